/**
 * The default log sink: info lines gathered and written in batches, all of them and in order,
 * also when the process exits right after logging; warnings at once on stderr.
 *
 * @module
 */
import assert from "node:assert/strict";

const LOG_MODULE = new URL("../../src/ops/log.ts", import.meta.url).href;

/** Run a script that logs through the default sink; its stdout and stderr lines. */
async function run(body: string): Promise<{ out: string[]; err: string[] }> {
  const script = `import { createLogger } from ${JSON.stringify(LOG_MODULE)};\n${body}`;
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const lines = (bytes: Uint8Array) =>
    new TextDecoder().decode(bytes).split("\n").filter((line) => line !== "");
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  return { out: lines(stdout), err: lines(stderr) };
}

Deno.test("log: every info line is written, in order, when the process exits at once", async () => {
  const { out } = await run(`
    const log = createLogger("info");
    for (let i = 0; i < 5000; i++) log.log("info", "request", { n: i });
    Deno.exit(0);
  `);
  assert.equal(out.length, 5000);
  out.forEach((line, i) => {
    const record = JSON.parse(line);
    assert.equal(record.msg, "request");
    assert.equal(record.n, i);
  });
});

Deno.test("log: lines logged across turns all arrive; warnings go to stderr, debug is dropped", async () => {
  const { out, err } = await run(`
    const log = createLogger("info");
    log.log("info", "first");
    await new Promise((resolve) => setTimeout(resolve, 20));
    log.log("warn", "careful");
    log.log("debug", "hidden");
    log.log("info", "last");
  `);
  assert.deepEqual(out.map((line) => JSON.parse(line).msg), ["first", "last"]);
  assert.deepEqual(err.map((line) => JSON.parse(line).msg), ["careful"]);
});
