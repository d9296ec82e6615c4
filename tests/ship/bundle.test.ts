/**
 * What ships is what is tested: build the bundle the way `deno task bundle` does, then run the
 * integration tests (and the CLI, ops and shutdown tests) again with every server being
 * `deno run <flags> berth.js` (`BERTH_TEST_COMMAND`, see tests/helpers/server.ts).
 *
 * @module
 */
import assert from "node:assert/strict";
import { run } from "../helpers/tools.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const RUN_FLAGS = ["--allow-net", "--allow-read", "--allow-write", "--allow-env"];
/** Test files run against the bundle (the others test modules, not the shipped program). */
const SUITES = ["tests/integration/", "tests/ship/"];
const NOT_AGAIN = ["tests/ship/bundle.test.ts", "tests/ship/image.test.ts"];

Deno.test({
  name: "bundle: the bundle passes the same integration tests as deno task start",
  // Inside the run it starts, BERTH_TEST_COMMAND is set: no recursion.
  ignore: Deno.env.get("BERTH_TEST_COMMAND") !== undefined,
  fn: async () => {
    const tasks = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)).tasks;
    assert.equal(tasks.bundle, "deno bundle --minify --output dist/berth.js main.ts");
    const dir = await Deno.makeTempDir({ prefix: "berth-bundle-" });
    try {
      const bundle = `${dir}/berth.js`;
      await run(Deno.execPath(), ["bundle", "--quiet", "--minify", "--output", bundle, "main.ts"], {
        cwd: ROOT,
      });
      const code = await Deno.readTextFile(bundle);
      assert.doesNotMatch(code, /from ["'](npm|jsr|https?):/, "the bundle imports nothing remote");
      // One character outside ASCII makes V8 keep the whole source as two bytes per character
      // (twice the memory).
      let wide = 0;
      while (wide < code.length && code.charCodeAt(wide) < 0x80) wide++;
      assert.equal(wide, code.length, `outside ASCII: ${code.slice(wide - 60, wide + 10)}`);

      const command = [Deno.execPath(), "run", ...RUN_FLAGS, bundle].join(" ");
      const child = await new Deno.Command(Deno.execPath(), {
        args: [
          "test",
          ...RUN_FLAGS,
          "--allow-run",
          "--allow-sys",
          `--ignore=${NOT_AGAIN.join(",")}`,
          ...SUITES,
        ],
        cwd: ROOT,
        env: { BERTH_TEST_COMMAND: command, NO_COLOR: "1" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const output = new TextDecoder().decode(child.stdout) +
        new TextDecoder().decode(child.stderr);
      const summary = /ok \| (\d+) passed(?: \(\d+ steps?\))? \| 0 failed/.exec(output);
      assert.equal(child.code, 0, `tests against the bundle failed:\n${output.slice(-10_000)}`);
      assert.ok(summary && Number(summary[1]) >= 50, `too few tests ran:\n${output.slice(-3000)}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
