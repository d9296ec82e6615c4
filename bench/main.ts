/**
 * `deno task bench`: berth against Debian's `docker-registry` (distribution 2.8.2), side by side,
 * interleaved; prints a table and writes it to `bench/results/latest.md`.
 *
 * Needs `docker-registry`, `curl` and `ab` (apache2-utils); uses `wrk` for GET load when installed.
 *
 * @module
 */
import { type BenchOptions, DEFAULT_OPTIONS, runBench } from "./run.ts";
import { formatReport } from "./report.ts";
import { runS3Bench } from "./s3.ts";
import { runCopyBench } from "./copy.ts";
import { runMirrorBench } from "./mirror.ts";
import { runGrowthBench } from "./growth.ts";
import { runUiBench } from "./ui.ts";
import { runStartBench } from "./start.ts";

/** Help text. */
export const BENCH_USAGE = `deno task bench [flags]
  --quick              small sizes for a quick look (64 MiB blob, 2 rounds, 2 s loads, ...)
  --rounds N           rounds of every scenario (default ${DEFAULT_OPTIONS.rounds})
  --blob-mib N         size of the big blob in MiB (default 1024)
  --chunks N           PATCHes of the chunked push (default ${DEFAULT_OPTIONS.chunks})
  --patch-mib N        the smaller blob of the one-PATCH pushes in MiB (default 256)
  --range-mib N        size of a range read in MiB (default 10)
  --seconds N          length of each load run (default ${DEFAULT_OPTIONS.load.seconds})
  --requests N         send N requests per load run instead of a timed run
  --connections N      concurrent connections of load runs (default ${DEFAULT_OPTIONS.connections})
  --tags N             tags in the tags/list repository (default ${DEFAULT_OPTIONS.tags})
  --repos N            repositories in the catalog (default ${DEFAULT_OPTIONS.repositories})
  --layers N           layers of the pushed image (default ${DEFAULT_OPTIONS.layers})
  --images N           images pushed per round (default ${DEFAULT_OPTIONS.imagePushes})
  --bare               also measure a bare Deno.serve doing the same I/O (the runtime's floor)
  --only LIST          only these groups, comma-separated: start (with a section of its own:
                       berth from main.ts and from its bundle, bare Deno.serve, Deno's floor,
                       distribution; bench/start.ts), push,patch,get,manifest,image,
                       tags,catalog, s3 (S3 on Ceph; runs when BERTH_TEST_S3_* or a ceph_up.sh
                       cluster is there, else its section says it was skipped),
                       copy (berth copy vs skopeo copy, bench/copy.ts),
                       mirror (pull-through cache: berth and distribution, bench/mirror.ts),
                       growth (how cost grows to 100,000 repositories, tags and blobs,
                       bench/growth.ts; trees in /dev/shm when it has room),
                       ui (the web UI's list at 10,000 repositories in chromium, bench/ui.ts)
  --out FILE           where to write the table (default bench/results/latest.md; "-" for none)
  --tmp DIR            where data directories and the blob go (default: the system temp dir)`;

/** Options for `--quick`. */
export const QUICK_OPTIONS: Partial<BenchOptions> = {
  blobSize: 64 << 20,
  patchSize: 16 << 20,
  rounds: 2,
  load: { seconds: 2 },
  tags: 200,
  repositories: 1000,
  catalogPage: 100,
  imagePushes: 2,
};

/** Parse the command line into options and the output path. */
export function parseArgs(args: string[]): { options: BenchOptions; out: string | undefined } {
  let options: BenchOptions = { ...DEFAULT_OPTIONS };
  let out: string | undefined = new URL("./results/latest.md", import.meta.url).pathname;
  for (let i = 0; i < args.length; i++) {
    const flag = args[i]!;
    const text = () => {
      const v = args[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    const int = () => {
      const v = Number(text());
      if (!Number.isInteger(v) || v < 1) throw new Error(`${flag} needs a positive integer`);
      return v;
    };
    switch (flag) {
      case "--quick":
        options = { ...options, ...QUICK_OPTIONS };
        break;
      case "--rounds":
        options.rounds = int();
        break;
      case "--blob-mib":
        options.blobSize = int() << 20;
        break;
      case "--patch-mib":
        options.patchSize = int() << 20;
        break;
      case "--chunks":
        options.chunks = int();
        break;
      case "--range-mib":
        options.rangeSize = int() << 20;
        break;
      case "--seconds":
        options.load = { seconds: int() };
        break;
      case "--requests":
        options.load = { requests: int() };
        break;
      case "--connections":
        options.connections = int();
        break;
      case "--tags":
        options.tags = int();
        break;
      case "--repos":
        options.repositories = int();
        break;
      case "--layers":
        options.layers = int();
        break;
      case "--images":
        options.imagePushes = int();
        break;
      case "--bare":
        options.bare = true;
        break;
      case "--only":
        options.only = text().split(",");
        break;
      case "--out": {
        const v = text();
        out = v === "-" ? undefined : v;
        break;
      }
      case "--tmp":
        options.tmpDir = text();
        break;
      default:
        throw new Error(`unknown flag ${flag}\n\n${BENCH_USAGE}`);
    }
  }
  return { options, out };
}

if (import.meta.main) {
  if (Deno.args.includes("--help") || Deno.args.includes("-h")) {
    console.log(BENCH_USAGE);
    Deno.exit(0);
  }
  const { options, out } = parseArgs(Deno.args);
  const log = (line: string) =>
    console.error(`[${new Date().toISOString().slice(11, 19)}] ${line}`);
  const only = options.only;
  const core = !only ||
    only.some((group) => !["s3", "copy", "mirror", "growth", "ui"].includes(group));
  let report = core ? formatReport(await runBench({ ...options, log })) : "";
  if (!only || only.includes("start")) {
    const starts = Math.max(options.starts, 6);
    report += "\n" +
      await runStartBench({ starts, log, ...(options.tmpDir && { tmpDir: options.tmpDir }) });
  }
  if (!only || only.includes("s3")) {
    // The one-PATCH sizes (256 MiB and 1 GiB by default), in 10 MiB parts.
    const sizes = [options.patchSize >> 20, options.blobSize >> 20];
    const s3 = { rounds: options.rounds, sizes, chunkMib: 10, log };
    report += (core ? "\n" : "") +
      await runS3Bench({ ...s3, ...(options.tmpDir && { tmpDir: options.tmpDir }) });
  }
  if (!only || only.includes("copy")) {
    const copy = await runCopyBench({
      bigMib: options.blobSize >> 20 || 1,
      layers: options.layers,
      rounds: options.rounds,
      ...(options.tmpDir && { tmp: options.tmpDir }),
      log,
    });
    report += (report ? "\n" : "") + copy;
  }
  if (!only || only.includes("mirror")) {
    const mirror = await runMirrorBench({
      layerSize: options.blobSize,
      rounds: options.rounds,
      ...(options.tmpDir && { tmpDir: options.tmpDir }),
      log,
    });
    report += (report ? "\n" : "") + mirror;
  }
  if (!only || only.includes("growth")) {
    const growth = await runGrowthBench({
      ...(Deno.args.includes("--quick") && { sizes: [1000], gcSizes: [1000], starts: 3 }),
      ...(options.tmpDir && { tmpDir: options.tmpDir }),
      log,
    });
    report += (report ? "\n" : "") + growth;
  }
  if (!only || only.includes("ui")) {
    const ui = await runUiBench({
      rounds: Math.max(options.rounds, 5),
      ...(options.tmpDir && { tmpDir: options.tmpDir }),
      log,
    });
    report += (report ? "\n" : "") + ui;
  }
  console.log(report);
  if (out) {
    const slash = out.lastIndexOf("/");
    if (slash > 0) await Deno.mkdir(out.slice(0, slash), { recursive: true });
    await Deno.writeTextFile(out, report);
    console.error(`written to ${out}`);
  }
}
