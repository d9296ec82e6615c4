/**
 * Memory stays flat: a large blob pushed and pulled through a berth child process keeps the
 * server's peak RSS far under the 200 MB the 1 GiB acceptance run allows (`bench/rss.ts` runs the
 * full 1 GiB). Not timing-based: it reads `VmHWM` from `/proc/<pid>/status`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { measureRss } from "../helpers/rss.ts";

Deno.test({
  name: "memory: a 256 MiB push and pull keeps the server's peak RSS under 200 MB",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const result = await measureRss(256 * 1024 * 1024);
    const peakMB = result.peakKiB * 1024 / 1e6;
    assert.ok(peakMB < 200, `peak RSS ${peakMB.toFixed(1)} MB`);
    // The blob is 268 MB: a server that buffered it would be far above this.
    assert.ok(result.peakKiB * 1024 < result.size, "peak RSS is below the blob's size");
  },
});
