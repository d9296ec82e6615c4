/**
 * What the benchmark measures (its metrics and their targets) and the Markdown table it prints:
 * medians per server with the spread of rounds, and the berth/distribution ratio.
 *
 * @module
 */
import type { BenchRun } from "./run.ts";

/** One measured quantity. */
export interface Metric {
  /** Stable key. */
  key: string;
  /** Row label. */
  label: string;
  /** Unit shown after values. */
  unit: "MB/s" | "req/s" | "pages/s" | "ops/s" | "MiB" | "CPU s/GiB" | "ms";
  /** The target, when the issue sets one: a ratio to distribution, a share of the bare runtime's
   * figure (the third column, `--bare`), or a memory ceiling. */
  target?:
    | { ratioAtLeast: number }
    | { shareOfBareAtLeast: number }
    | { berthAtMostMiB: number }
    | { berthAtMostMs: number };
}

/** Every metric, in table order. */
export const METRICS = {
  pushMonolithic: {
    key: "push.monolithic",
    label: "blob push, monolithic (POST+PUT)",
    unit: "MB/s",
    target: { ratioAtLeast: 2.5 },
  },
  pushChunked: {
    key: "push.chunked",
    label: "blob push, chunked (PATCHes)",
    unit: "MB/s",
    target: { ratioAtLeast: 2.5 },
  },
  pushCpu: {
    key: "push.cpu",
    label: "server CPU per GiB of monolithic push (lower is better)",
    unit: "CPU s/GiB",
  },
  pushMainCpu: {
    key: "push.main-cpu",
    label: "main-thread CPU per GiB of monolithic push (lower is better)",
    unit: "CPU s/GiB",
  },
  patchLength256: {
    key: "patch.length.256",
    label: "blob push, one PATCH with Content-Length, 256 MiB",
    unit: "MB/s",
  },
  patchChunked256: {
    key: "patch.chunked.256",
    label: "blob push, one PATCH with Transfer-Encoding: chunked, 256 MiB",
    unit: "MB/s",
    target: { ratioAtLeast: 2 },
  },
  patchLengthBig: {
    key: "patch.length.big",
    label: "blob push, one PATCH with Content-Length, 1 GiB",
    unit: "MB/s",
  },
  patchChunkedBig: {
    key: "patch.chunked.big",
    label: "blob push, one PATCH with Transfer-Encoding: chunked, 1 GiB",
    unit: "MB/s",
    target: { ratioAtLeast: 2 },
  },
  patchChunkedBigMainCpu: {
    key: "patch.chunked.big.main-cpu",
    label: "main-thread CPU per GiB of that PATCH (lower is better)",
    unit: "CPU s/GiB",
  },
  patchChunkedBigCpu: {
    key: "patch.chunked.big.cpu",
    label: "server CPU per GiB of that PATCH, all threads (lower is better)",
    unit: "CPU s/GiB",
  },
  rssPatch: {
    key: "rss.patch",
    label: "RSS peak during the one-PATCH pushes (sampled VmRSS)",
    unit: "MiB",
    target: { berthAtMostMiB: 80 },
  },
  rssPatchAnon: {
    key: "rss.patch.anon",
    label:
      "of it, the process's own memory (sampled RssAnon peak; the rest: the executable's pages)",
    unit: "MiB",
  },
  blobGet: { key: "blob.get", label: "blob GET", unit: "MB/s", target: { ratioAtLeast: 1 } },
  getCpu: {
    key: "blob.get.cpu",
    label: "server CPU per GiB of blob GET (lower is better)",
    unit: "CPU s/GiB",
  },
  rangeGet: {
    key: "blob.range",
    label: "blob range GET",
    unit: "MB/s",
    target: { ratioAtLeast: 1 },
  },
  manifestHead: {
    key: "manifest.head",
    label: "manifest HEAD by tag",
    unit: "req/s",
    target: { shareOfBareAtLeast: 0.7 },
  },
  manifestGet: {
    key: "manifest.get",
    label: "manifest GET by tag",
    unit: "req/s",
    target: { shareOfBareAtLeast: 0.7 },
  },
  base: {
    key: "base",
    label: "`GET /v2/`",
    unit: "req/s",
    target: { shareOfBareAtLeast: 0.7 },
  },
  blobHead: {
    key: "blob.head",
    label: "blob HEAD",
    unit: "req/s",
    target: { shareOfBareAtLeast: 0.7 },
  },
  tagsList: { key: "tags.list", label: "tags/list", unit: "req/s", target: { ratioAtLeast: 10 } },
  catalog: {
    key: "catalog",
    label: "_catalog walk",
    unit: "pages/s",
    target: { ratioAtLeast: 10 },
  },
  imagePush: { key: "image.push", label: "image push", unit: "ops/s" },
  rssPush: {
    key: "rss.push",
    label: "RSS peak during pushes (sampled VmRSS)",
    unit: "MiB",
    target: { berthAtMostMiB: 80 },
  },
  rssPushAnon: {
    key: "rss.push.anon",
    label:
      "of it, the process's own memory (sampled RssAnon peak; the rest: the executable's pages)",
    unit: "MiB",
  },
  rssPeak: { key: "rss.hwm", label: "RSS high-water after pushes (VmHWM)", unit: "MiB" },
  rssIdle: {
    key: "rss.idle",
    label: "RSS idle after start (VmRSS)",
    unit: "MiB",
    target: { berthAtMostMiB: 50 },
  },
  startWall: {
    key: "start.wall",
    label: "start to first answer (empty data directory, fresh process per start)",
    unit: "ms",
    target: { berthAtMostMs: 100 },
  },
  startCpu: {
    key: "start.cpu",
    label: "CPU (user + system) to first answer, same starts",
    unit: "ms",
  },
} as const satisfies Record<string, Metric>;

/** Values per metric key, per server name: one per round, or `"n/a"`. */
export type Results = Map<string, Map<string, number[] | "n/a">>;

/** The median of some numbers (`NaN` when empty). */
export function median(values: readonly number[]): number {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The median of one metric for one server, in the metric's unit; `undefined` when n/a. */
export function medianOf(run: BenchRun, metric: Metric, server: string): number | undefined {
  const values = run.results.get(metric.key)?.get(server);
  if (values === undefined || values === "n/a") return undefined;
  const m = median(values);
  if (Number.isNaN(m)) return undefined;
  return metric.unit === "MiB" ? m / (1 << 20) : m;
}

function format(value: number): string {
  if (!Number.isFinite(value)) return "?";
  if (value >= 100) return Math.round(value).toLocaleString("en-US");
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

function cell(run: BenchRun, metric: Metric, server: string): string {
  const values = run.results.get(metric.key)?.get(server);
  if (values === undefined) return "–";
  if (values === "n/a") return "n/a";
  const failed = values.filter((v) => Number.isNaN(v)).length;
  if (failed === values.length) return "failed";
  if (failed > 0) {
    return `${cellOf(values.filter((v) => !Number.isNaN(v)), metric)} (${failed} failed)`;
  }
  return cellOf(values, metric);
}

function cellOf(values: number[], metric: Metric): string {
  const scale = metric.unit === "MiB" ? 1 / (1 << 20) : 1;
  const m = format(median(values) * scale);
  if (values.length < 2) return m;
  const min = format(Math.min(...values) * scale);
  const max = format(Math.max(...values) * scale);
  return `${m} (${min}–${max})`;
}

/** Whether berth meets a metric's target: `undefined` when there is none or it is n/a. */
export function targetMet(run: BenchRun, metric: Metric): boolean | undefined {
  if (!("target" in metric) || !metric.target) return undefined;
  const [berth, other] = run.servers;
  const b = medianOf(run, metric, berth ?? "");
  if (b === undefined) return undefined;
  if ("berthAtMostMiB" in metric.target) return b <= metric.target.berthAtMostMiB;
  if ("berthAtMostMs" in metric.target) return b <= metric.target.berthAtMostMs;
  if ("shareOfBareAtLeast" in metric.target) {
    const share = bareShare(run, metric);
    return share === undefined ? undefined : share >= metric.target.shareOfBareAtLeast;
  }
  const d = medianOf(run, metric, other ?? "");
  if (d === undefined) return undefined;
  return b / d >= metric.target.ratioAtLeast;
}

/** The Markdown report of a run: a table and the conditions it was measured in. */
export function formatReport(run: BenchRun): string {
  const [berth = "berth", other = "distribution", ...more] = run.servers;
  const o = run.options;
  const lines = [
    `# berth vs distribution`,
    "",
    `Run ${run.time[0].toISOString()} → ${run.time[1].toISOString()}; ${o.rounds} rounds ` +
    `interleaved (order alternating); medians, (min–max) over rounds; ratio = ${berth}/${other}.`,
    "",
    `| metric | ${berth} | ${other} | ratio | target | met |${more.map((m) => ` ${m} |`).join("")}`,
    `|---|---:|---:|---:|---|---|${more.map(() => "---:|").join("")}`,
  ];
  for (const metric of Object.values(METRICS) as Metric[]) {
    const b = medianOf(run, metric, berth);
    const d = medianOf(run, metric, other);
    const ratio = b !== undefined && d !== undefined && d > 0 ? `${format(b / d)}×` : "n/a";
    let target = "";
    if (metric.target && "ratioAtLeast" in metric.target) {
      target = `≥ ${metric.target.ratioAtLeast}×`;
    } else if (metric.target && "shareOfBareAtLeast" in metric.target) {
      const share = bareShare(run, metric);
      target = `≥ ${metric.target.shareOfBareAtLeast * 100}% of ${more[0] ?? "bare (--bare)"}` +
        (share === undefined ? "" : ` (${Math.round(share * 100)}%)`);
    } else if (metric.target && "berthAtMostMs" in metric.target) {
      target = `${berth} ≤ ${metric.target.berthAtMostMs} ms`;
    } else if (metric.target) target = `${berth} ≤ ${metric.target.berthAtMostMiB} MiB`;
    const met = targetMet(run, metric);
    lines.push(
      `| ${metric.label}, ${metric.unit} | ${cell(run, metric, berth)} | ${
        cell(run, metric, other)
      } | ${ratio} | ${target} | ${
        met === undefined ? (target ? "n/a" : "") : met ? "yes" : "NO"
      } |${more.map((m) => ` ${cell(run, metric, m)} |`).join("")}`,
    );
  }
  lines.push(
    "",
    `Sizes: blob ${mib(o.blobSize)} (chunked: ${o.chunks} PATCHes); one-PATCH pushes of ` +
      `${mib(o.patchSize)} and ${mib(o.blobSize)} (the rows say the defaults); ` +
      `${o.rangeReads} range reads ` +
      `of ${mib(o.rangeSize)} per round; load ${
        o.load.seconds !== undefined ? `${o.load.seconds} s` : `${o.load.requests} requests`
      } at ${o.connections} connections (${[...run.tools].join(", ") || "-"}); tags/list of ` +
      `${o.tags} tags; catalog of ${o.repositories} repositories walked ${o.catalogPage} per ` +
      `page; image push = ${o.layers} layers of ${o.layerSize} B + config + manifest, blobs ` +
      `${o.imageConcurrency} at a time (HEAD, POST, PUT), ${o.imagePushes} images per round.`,
    `One-PATCH pushes: the same bytes sent by \`curl -T\` with a Content-Length, then with ` +
      `\`Transfer-Encoding: chunked\`; ${berth} takes ${chunkedCost(run, berth)} the time ` +
      `of its Content-Length PATCH (target ≤ 2×).`,
    `Bulk transfers by curl over loopback; load average before/after: ${run.loadavg[0]} / ` +
      `${run.loadavg[1]}; ${navigator.hardwareConcurrency} CPUs; ${berth} on Deno ` +
      `${run.runtime}, run from its minified bundle (as shipped: \`deno task bundle\`).`,
    ...(run.failures?.length
      ? ["", "Failed measurements (the run went on):", ...run.failures.map((f) => `- ${f}`)]
      : []),
    "",
    ...floorTable(run),
    ...getFloorTable(run),
  );
  return lines.join("\n");
}

/** The rows the push floor takes part in. */
const FLOOR_METRICS: readonly Metric[] = [
  METRICS.pushMonolithic,
  METRICS.pushChunked,
  METRICS.pushCpu,
  METRICS.pushMainCpu,
  METRICS.patchLength256,
  METRICS.patchChunked256,
  METRICS.patchLengthBig,
  METRICS.patchChunkedBig,
  METRICS.patchChunkedBigMainCpu,
  METRICS.patchChunkedBigCpu,
  METRICS.rssPatch,
  METRICS.rssPatchAnon,
  METRICS.rssPush,
  METRICS.rssPushAnon,
];

/**
 * The push rows next to the floor of any Deno server doing the same work, and whether each goal
 * is within that floor's reach (when the floor itself misses it, the runtime stops berth first).
 */
function floorTable(run: BenchRun): string[] {
  const floor = run.floor;
  if (!floor) return [];
  const [berth = "berth", other = "distribution"] = run.servers;
  const ratio = (a: number | undefined, b: number | undefined) =>
    a !== undefined && b !== undefined && b > 0 ? `${format(a / b)}×` : "n/a";
  const lines = [
    `## Pushes against the floor of any Deno server`,
    "",
    `${floor}: \`bench/listen_floor.ts\` in mode \`push\`, a bare \`Deno.listen\` loop doing a ` +
    `push's I/O and nothing else (POST opens a file; PATCH/PUT bodies read in 2 MiB batches as berth's, ` +
    `chunked framing decoded, SHA-256 on the main thread, each batch written while the next is ` +
    `read; the PUT compares the digest, waits for the final \`fdatasync\` and renames). ` +
    `Measured in the same rounds as the rows above, ` +
    `in the same rotation, after the same scratch-file warm-up, with the same curl.`,
    "",
    `| metric | ${berth} | ${floor} | ${other} | ${berth}/floor | floor/${other} | goal | ` +
    `goal within the floor |`,
    "|---|---:|---:|---:|---:|---:|---|---|",
  ];
  for (const metric of FLOOR_METRICS) {
    const b = medianOf(run, metric, berth);
    const f = medianOf(run, metric, floor);
    const d = medianOf(run, metric, other);
    let goal = "";
    let reach = "";
    if (metric.target && "ratioAtLeast" in metric.target) {
      goal = `≥ ${metric.target.ratioAtLeast}× ${other}`;
      if (f !== undefined && d !== undefined && d > 0) {
        reach = f / d >= metric.target.ratioAtLeast ? "yes" : "NO";
      }
    } else if (metric.target && "berthAtMostMiB" in metric.target) {
      goal = `≤ ${metric.target.berthAtMostMiB} MiB`;
      if (f !== undefined) reach = f <= metric.target.berthAtMostMiB ? "yes" : "NO";
    }
    lines.push(
      `| ${metric.label}, ${metric.unit} | ${cell(run, metric, berth)} | ${
        cell(run, metric, floor)
      } | ${cell(run, metric, other)} | ${ratio(b, f)} | ${ratio(f, d)} | ${goal} | ${reach} |`,
    );
  }
  lines.push(
    "",
    `RSS: \`VmRSS\` is the process's own memory (\`RssAnon\`, the "of it" rows) plus the ` +
      `pages of the \`deno\` executable it has touched (\`RssFile\`: V8, its snapshot, the ` +
      `runtime code it ran and V8's compilers; read from disk, shared with other processes).`,
    "",
  );
  return lines;
}

/**
 * The blob GET rows next to the floors of any Deno server sending the same file, and whether the
 * goal is within the best floor's reach.
 */
function getFloorTable(run: BenchRun): string[] {
  const floors = run.getFloors ?? [];
  if (floors.length === 0) return [];
  const [berth = "berth", other = "distribution"] = run.servers;
  const ratio = (a: number | undefined, b: number | undefined) =>
    a !== undefined && b !== undefined && b > 0 ? `${format(a / b)}×` : "n/a";
  const lines = [
    `## Blob GET against the floor of any Deno server`,
    "",
    `GET floors: \`bench/listen_floor.ts\` in mode \`get\`, a bare \`Deno.listen\` loop that ` +
    `answers a GET with the blob file (a hard link to the bench's blob: the same page cache) and ` +
    `nothing else, through two 1 MiB buffers (the next \`file.read\` while the last ` +
    `\`conn.write\` goes out, as berth) or one of 4 MiB (a read, then a write); other ways were ` +
    `slower or cost more CPU (\`bench/get_cpu.ts\`, bench/README.md). Deno ${run.runtime} has no \`sendfile\`; distribution 2.8.2 does not use ` +
    `it either (it \`read\`s the file and \`write\`s 32 KiB at a time). Measured in the same ` +
    `rounds and rotation as the rows above, with the same curl; "best floor" is the better median.`,
    "",
    `| metric | ${berth} | ${floors.join(" | ")} | ${other} | ${berth}/best floor | ` +
    `best floor/${other} | goal | goal within the best floor |`,
    `|---|---:|${floors.map(() => "---:|").join("")}---:|---:|---:|---|---|`,
  ];
  for (const metric of [METRICS.blobGet, METRICS.getCpu, METRICS.rangeGet] as Metric[]) {
    const b = medianOf(run, metric, berth);
    const medians = floors.map((f) => medianOf(run, metric, f)).filter((v) => v !== undefined);
    const lower = metric.unit === "CPU s/GiB";
    const f = medians.length ? (lower ? Math.min : Math.max)(...medians) : undefined;
    const d = medianOf(run, metric, other);
    let goal = "";
    let reach = "";
    if (metric.target && "ratioAtLeast" in metric.target) {
      goal = `≥ ${metric.target.ratioAtLeast}× ${other}`;
      if (f !== undefined && d !== undefined && d > 0) {
        reach = f / d >= metric.target.ratioAtLeast ? "yes" : "NO";
      }
    }
    lines.push(
      `| ${metric.label}, ${metric.unit} | ${cell(run, metric, berth)} | ${
        floors.map((floor) => cell(run, metric, floor)).join(" | ")
      } | ${cell(run, metric, other)} | ${ratio(b, f)} | ${ratio(f, d)} | ${goal} | ${reach} |`,
    );
  }
  lines.push("");
  return lines;
}

/** berth's median as a share of the bare runtime's (the third server), when both were measured. */
function bareShare(run: BenchRun, metric: Metric): number | undefined {
  const b = medianOf(run, metric, run.servers[0] ?? "");
  const bare = medianOf(run, metric, run.servers[2] ?? "");
  return b === undefined || bare === undefined || bare <= 0 ? undefined : b / bare;
}

/** How much longer a chunked PATCH takes than a Content-Length one, e.g. "1.1× (256 MiB)". */
function chunkedCost(run: BenchRun, server: string): string {
  const pairs = [
    [mib(run.options.patchSize), METRICS.patchLength256, METRICS.patchChunked256],
    [mib(run.options.blobSize), METRICS.patchLengthBig, METRICS.patchChunkedBig],
  ] as const;
  const costs = pairs.flatMap(([size, length, chunked]) => {
    const l = medianOf(run, length, server);
    const c = medianOf(run, chunked, server);
    return l !== undefined && c !== undefined && c > 0 ? [`${format(l / c)}× (${size})`] : [];
  });
  return costs.join(", ") || "?";
}

function mib(bytes: number): string {
  return `${+(bytes / (1 << 20)).toFixed(2)} MiB`;
}
