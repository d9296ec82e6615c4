/**
 * Peak server memory for a large blob push and pull (default 1 GiB):
 * `deno run -A bench/rss.ts [MiB]`. Prints the server's idle and peak RSS (VmHWM) and exits
 * non-zero when the peak reaches 200 MB.
 *
 * @module
 */
import { measureRss } from "../tests/helpers/rss.ts";

/** The acceptance limit for the server's peak RSS, in bytes. */
const LIMIT = 200 * 1000 * 1000;

if (import.meta.main) {
  const mib = Number(Deno.args[0] ?? 1024);
  const result = await measureRss(mib * 1024 * 1024);
  const mb = (kib: number) => (kib * 1024 / 1e6).toFixed(1);
  const rate = (ms: number) => (result.size / 1e6 / (ms / 1000)).toFixed(0);
  console.log(JSON.stringify({
    blobMiB: mib,
    idleRssMB: Number(mb(result.idleKiB)),
    peakRssMB: Number(mb(result.peakKiB)),
    pushMBps: Number(rate(result.pushMs)),
    pullMBps: Number(rate(result.pullMs)),
  }));
  if (result.peakKiB * 1024 >= LIMIT) {
    console.error(`peak RSS ${mb(result.peakKiB)} MB is not under 200 MB`);
    Deno.exit(1);
  }
}
