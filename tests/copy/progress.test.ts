/**
 * Progress and interruption: the terminal renderer's lines, no progress output when stderr is
 * not a TTY, and Ctrl-C (SIGINT) on `berth copy` leaving the destination without the tag.
 *
 * @module
 */
import assert from "node:assert/strict";
import { TerminalProgress } from "../../src/copy/progress.ts";
import { bytesOf, digestOf, pushImage } from "../helpers/registry.ts";
import { berthCommand, startServer } from "../helpers/server.ts";
import { startFake } from "../client/fake_server.ts";
import { berth } from "./cli.ts";

Deno.test("progress: one line per finished blob, in-flight lines redrawn, an overall line", () => {
  let out = "";
  const progress = new TerminalProgress((text) => out += text, 60_000);
  const digest = `sha256:${"ab".repeat(32)}`;
  progress.plan([{ digest, size: 2048 }, { digest: `sha256:${"cd".repeat(32)}`, size: 10 }]);
  progress.blobStart({ digest, size: 2048 });
  progress.blobBytes(digest, 2048);
  progress.blobDone(digest, "uploaded");
  progress.blobDone(`sha256:${"cd".repeat(32)}`, "exists");
  progress.finish();
  assert.match(out, /blob abababababab copied 2\.0 KiB\n/);
  assert.match(out, /blob cdcdcdcdcdcd already there\n/);
  assert.match(out, /2\/2 blobs, 2\.0 KiB of 2\.0 KiB copied/);
  assert.ok(out.includes("\x1b["), "redraws with escape codes on a terminal");
});

Deno.test("copy: no progress output when stderr is not a terminal; Ctrl-C leaves no tag", async () => {
  const a = await startServer();
  const b = await startServer();
  const image = await pushImage(a.url, "src/app", "v1", { seed: 9, layerSize: 300_000 });
  const layer = digestOf(image.layer);
  const { promise: blobStarted, resolve } = Promise.withResolvers<void>();
  const slow = await startFake(async (request, url) => {
    const upstream = await fetch(`${a.url}${url.pathname}${url.search}`, {
      method: request.method,
      headers: request.headers,
    });
    if (!url.pathname.endsWith(layer)) return upstream;
    const bytes = await bytesOf(upstream);
    let sent = 0;
    return new Response(
      new ReadableStream({
        async pull(controller) {
          resolve();
          await new Promise((r) => setTimeout(r, 50));
          if (sent >= bytes.length) return controller.close();
          controller.enqueue(bytes.slice(sent, sent + 1000));
          sent += 1000;
        },
        cancel() {},
      }),
      { headers: upstream.headers },
    );
  });
  try {
    const quiet = await berth([
      "copy",
      "--tls-verify=false",
      `docker://${a.host}/src/app:v1`,
      `docker://${b.host}/plain/app:v1`,
    ]);
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.equal(quiet.stderr, "");
    assert.ok(!quiet.stdout.includes("\x1b["));

    const [cmd, ...args] = berthCommand();
    const child = new Deno.Command(cmd!, {
      args: [
        ...args,
        "copy",
        "--tls-verify=false",
        `docker://${slow.host}/src/app:v1`,
        `docker://${b.host}/dst/app:v1`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    await blobStarted;
    await new Promise((r) => setTimeout(r, 200));
    child.kill("SIGINT");
    const output = await child.output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 1, stderr);
    assert.equal(stderr.trim().split("\n").length, 1, stderr);
    assert.match(stderr, /interrupted/);
    const head = await fetch(`${b.url}/v2/dst/app/manifests/v1`, { method: "HEAD" });
    assert.equal(head.status, 404);
  } finally {
    await slow.close();
    await a.close();
    await b.close();
  }
});
