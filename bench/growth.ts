/**
 * `deno task bench:growth` (and group `growth` of `deno task bench`): how cost grows with what is
 * stored, berth next to distribution.
 *
 * - Start to first answer and idle RSS on an empty data directory (median of several starts).
 * - For each size N (default 1,000, 10,000, 100,000) one data directory written straight in the
 *   shared layout: one repository with N tags, and N repositories. Each server is started on it
 *   and measured: start to first answer, the first `_catalog` page (`n=100`: the first request,
 *   the median of the next ones, and a page from the middle), `tags/list` of the N tags (first,
 *   then median), a manifest HEAD by tag in the N-tag repository, and the server's RSS after.
 * - Online garbage collection with N unreferenced blobs (default 10,000 and 100,000): berth's
 *   `POST /admin/gc` (time, peak RSS, manifest HEAD latency while it runs) next to
 *   distribution's offline `garbage-collect --dry-run` over the same tree (it has no online GC).
 *
 * ```
 * deno task bench:growth [--sizes 1000,10000,100000] [--gc-sizes 10000,100000] [--tmp DIR]
 * ```
 *
 * @module
 */
import { createHash } from "node:crypto";
import {
  type BenchServer,
  readMemory,
  readProc,
  RssSampler,
  startBerth,
  startDistribution,
} from "./servers.ts";

const MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json";

/** One measured row of the size table. */
export interface Row {
  size: number;
  server: string;
  startMs: number;
  catalogFirstMs: number;
  catalogNextMs: number;
  catalogMiddleMs: number;
  tagsFirstMs: number;
  tagsNextMs: number;
  headMs: number;
  rssMiB: number;
}

/** Start to first answer on an empty data directory. */
interface StartRow {
  server: string;
  startMs: number[];
  rssMiB: number;
}

/** One garbage collection. */
interface GcRow {
  blobs: number;
  server: string;
  ms: number;
  peakMiB: number;
  headMedianMs?: number;
  headMaxMs?: number;
  heads?: number;
  deleted?: number;
}

/** Options of {@link runGrowthBench}. */
export interface GrowthOptions {
  /** Repositories and tags per size row. */
  sizes?: number[];
  /** Unreferenced blobs per garbage collection row. */
  gcSizes?: number[];
  /** Starts on an empty data directory. */
  starts?: number;
  /** Where the data directories go. */
  tmpDir?: string;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** Write a data directory with one repository of `size` tags and `size` more repositories. */
export function writeTree(root: string, size: number): void {
  const v2 = `${root}/docker/registry/v2`;
  const enc = new TextEncoder();
  const config = enc.encode('{"architecture":"amd64","os":"linux"}');
  const manifest = enc.encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: MANIFEST_TYPE,
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: digest(config),
      size: config.byteLength,
    },
    layers: [],
  }));
  const configHex = writeBlob(v2, config);
  const manifestHex = writeBlob(v2, manifest);
  const link = enc.encode(`sha256:${manifestHex}`);
  const repo = (name: string, tags: string[]) => {
    const base = `${v2}/repositories/${name}`;
    Deno.mkdirSync(`${base}/_layers/sha256/${configHex}`, { recursive: true });
    Deno.writeFileSync(
      `${base}/_layers/sha256/${configHex}/link`,
      enc.encode(`sha256:${configHex}`),
    );
    Deno.mkdirSync(`${base}/_manifests/revisions/sha256/${manifestHex}`, { recursive: true });
    Deno.writeFileSync(`${base}/_manifests/revisions/sha256/${manifestHex}/link`, link);
    for (const tag of tags) {
      Deno.mkdirSync(`${base}/_manifests/tags/${tag}/current`, { recursive: true });
      Deno.writeFileSync(`${base}/_manifests/tags/${tag}/current/link`, link);
      const index = `${base}/_manifests/tags/${tag}/index/sha256/${manifestHex}`;
      Deno.mkdirSync(index, { recursive: true });
      Deno.writeFileSync(`${index}/link`, link);
    }
  };
  repo("grow/tags", Array.from({ length: size }, (_, i) => `t${String(i).padStart(6, "0")}`));
  for (let i = 0; i < size; i++) repo(`grow/r${String(i).padStart(6, "0")}`, ["latest"]);
}

/** Add `count` blobs no manifest names (small, distinct) to a data directory. */
function writeGarbage(root: string, count: number): void {
  const v2 = `${root}/docker/registry/v2`;
  const enc = new TextEncoder();
  for (let i = 0; i < count; i++) writeBlob(v2, enc.encode(`garbage ${i}`));
}

function writeBlob(v2: string, bytes: Uint8Array): string {
  const hex = digest(bytes).slice(7);
  const dir = `${v2}/blobs/sha256/${hex.slice(0, 2)}/${hex}`;
  Deno.mkdirSync(dir, { recursive: true });
  Deno.writeFileSync(`${dir}/data`, bytes);
  return hex;
}

function digest(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** Milliseconds of one request (body read to the end); throws on a status other than 200. */
async function timed(url: string, method = "GET"): Promise<number> {
  const t0 = performance.now();
  const response = await fetch(url, { method, headers: { Accept: MANIFEST_TYPE } });
  await response.arrayBuffer();
  if (response.status !== 200) throw new Error(`${method} ${url}: ${response.status}`);
  return performance.now() - t0;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1] ?? NaN;
}

async function medianOf(times: number, run: () => Promise<number>): Promise<number> {
  const values: number[] = [];
  for (let i = 0; i < times; i++) values.push(await run());
  return median(values);
}

async function timedStart(start: () => Promise<BenchServer>) {
  const t0 = performance.now();
  const server = await start();
  return { server, startMs: performance.now() - t0 };
}

/** Start a server on a data directory written by {@link writeTree} and measure one size row. */
export async function measure(
  size: number,
  start: () => Promise<BenchServer>,
): Promise<Row> {
  const { server, startMs } = await timedStart(start);
  try {
    const catalog = `${server.url}/v2/_catalog?n=100`;
    const catalogFirstMs = await timed(catalog);
    const catalogNextMs = await medianOf(9, () => timed(catalog));
    const middle = `${catalog}&last=grow/r${String(size >> 1).padStart(6, "0")}`;
    const catalogMiddleMs = await medianOf(9, () => timed(middle));
    const tags = `${server.url}/v2/grow/tags/tags/list`;
    const tagsFirstMs = await timed(tags);
    const tagsNextMs = await medianOf(5, () => timed(tags));
    const head = `${server.url}/v2/grow/tags/manifests/t${String(size >> 1).padStart(6, "0")}`;
    await timed(head, "HEAD");
    const headMs = await medianOf(51, () => timed(head, "HEAD"));
    const rssMiB = ((await readMemory(server.pid))?.rss ?? NaN) / (1 << 20);
    return {
      size,
      server: server.name,
      startMs,
      catalogFirstMs,
      catalogNextMs,
      catalogMiddleMs,
      tagsFirstMs,
      tagsNextMs,
      headMs,
      rssMiB,
    };
  } finally {
    await server.stop();
  }
}

/** Start each server `starts` times on an empty data directory. */
async function measureStarts(starts: number, tmpDir?: string): Promise<StartRow[]> {
  const rows: StartRow[] = [];
  for (const name of ["distribution", "berth"]) {
    const row: StartRow = { server: name, startMs: [], rssMiB: NaN };
    for (let i = 0; i < starts; i++) {
      const dir = await makeTemp(tmpDir);
      try {
        const data = `${dir}/data`;
        const { server, startMs } = await timedStart(() =>
          name === "berth" ? startBerth(data) : startDistribution(data)
        );
        row.startMs.push(startMs);
        if (i === starts - 1) {
          await new Promise((resolve) => setTimeout(resolve, 1000));
          row.rssMiB = ((await readMemory(server.pid))?.rss ?? NaN) / (1 << 20);
        }
        await server.stop();
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    }
    rows.push(row);
  }
  return rows;
}

/** Berth's online collection of `blobs` unreferenced blobs, and distribution's offline dry run. */
async function measureGc(blobs: number, tmpDir?: string): Promise<GcRow[]> {
  const dir = await makeTemp(tmpDir);
  const data = `${dir}/data`;
  try {
    writeTree(data, 10);
    writeGarbage(data, blobs);
    const rows: GcRow[] = [await distributionGc(data, blobs)];
    const server = await startBerth(data, {
      REGISTRY_STORAGE_MAINTENANCE_GC_ADMINENDPOINT: "true",
      REGISTRY_STORAGE_MAINTENANCE_GC_GRACEPERIOD: "0s",
    });
    try {
      const head = `${server.url}/v2/grow/tags/manifests/t000005`;
      await timed(head, "HEAD");
      const sampler = new RssSampler(server.pid);
      let running = true;
      const latencies: number[] = [];
      const load = (async () => {
        while (running) latencies.push(await timed(head, "HEAD"));
      })();
      const t0 = performance.now();
      const response = await fetch(`${server.url}/admin/gc`, { method: "POST" });
      const report = await response.json() as { blobsDeleted?: unknown[] };
      const ms = performance.now() - t0;
      running = false;
      await load;
      if (response.status !== 200) throw new Error(`POST /admin/gc: ${response.status}`);
      rows.push({
        blobs,
        server: "berth (online)",
        ms,
        peakMiB: (await sampler.stop()) / (1 << 20),
        headMedianMs: median(latencies),
        headMaxMs: latencies.reduce((a, b) => Math.max(a, b), 0),
        heads: latencies.length,
        deleted: report.blobsDeleted?.length ?? 0,
      });
    } finally {
      await server.stop();
    }
    return rows;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** `docker-registry garbage-collect --dry-run` (offline: nothing else runs) on `data`. */
async function distributionGc(data: string, blobs: number): Promise<GcRow> {
  const config = `${data}.gc.yml`;
  await Deno.writeTextFile(
    config,
    `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${data}\n`,
  );
  const child = new Deno.Command("docker-registry", {
    args: ["garbage-collect", "--dry-run", config],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const sampler = new RssSampler(child.pid);
  const t0 = performance.now();
  const status = await child.status;
  const ms = performance.now() - t0;
  const peak = await sampler.stop();
  await Deno.remove(config);
  if (!status.success) throw new Error(`docker-registry garbage-collect: exit ${status.code}`);
  return { blobs, server: "distribution (offline, dry run)", ms, peakMiB: peak / (1 << 20) };
}

async function makeTemp(tmpDir?: string): Promise<string> {
  return await Deno.makeTempDir({ prefix: "berth-growth-", ...(tmpDir && { dir: tmpDir }) });
}

/** Measure everything; returns the Markdown section. */
export async function runGrowthBench(options: GrowthOptions = {}): Promise<string> {
  const log = options.log ?? ((line: string) => console.error(line));
  const { sizes = [1000, 10_000, 100_000], gcSizes = [10_000, 100_000], starts = 5 } = options;
  const startRows = await measureStarts(starts, options.tmpDir);
  for (const row of startRows) log(`growth: start ${JSON.stringify(row)}`);
  const rows: Row[] = [];
  for (const size of sizes) {
    const dir = await makeTemp(options.tmpDir);
    try {
      const t0 = performance.now();
      writeTree(`${dir}/data`, size);
      log(`growth: ${size}: tree written in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      for (const name of ["distribution", "berth"]) {
        const data = `${dir}/data`;
        const row = await measure(
          size,
          () => name === "berth" ? startBerth(data) : startDistribution(data),
        );
        log(`growth: ${JSON.stringify(row)}`);
        rows.push(row);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
  const gcRows: GcRow[] = [];
  for (const blobs of gcSizes) {
    for (const row of await measureGc(blobs, options.tmpDir)) {
      log(`growth: gc ${JSON.stringify(row)}`);
      gcRows.push(row);
    }
  }
  const load = (await readProc("/proc/loadavg"))?.split(" ").slice(0, 3).join(" ");
  return [
    "## How cost grows",
    "",
    `Deno ${Deno.version.deno}; load average ${load} at the end (a shared machine: compare ` +
    "within a row).",
    "",
    formatStarts(startRows),
    "",
    formatGrowth(rows),
    "",
    formatGc(gcRows),
    "",
  ].join("\n");
}

const f = (n: number) =>
  Number.isNaN(n) ? "n/a" : n >= 100 ? Math.round(n).toLocaleString("en-US") : n.toFixed(1);

/** Start to first answer on an empty data directory. */
export function formatStarts(rows: StartRow[]): string {
  return [
    "| empty data directory | start to first answer, ms: median (min–max) | idle RSS, MiB |",
    "|---|---:|---:|",
    ...rows.map((r) =>
      `| ${r.server} | ${f(median(r.startMs))} (${f(Math.min(...r.startMs))}–${
        f(Math.max(...r.startMs))
      }) | ${f(r.rssMiB)} |`
    ),
  ].join("\n");
}

/** The size rows as a Markdown table. */
export function formatGrowth(rows: Row[]): string {
  return [
    "| N | server | start to first answer, ms | `_catalog?n=100`: first / next / middle, ms | " +
    "tags/list of N tags: first / next, ms | manifest HEAD by tag (N tags), ms | RSS after, MiB |",
    "|---:|---|---:|---:|---:|---:|---:|",
    ...rows.map((r) =>
      `| ${r.size.toLocaleString("en-US")} | ${r.server} | ${f(r.startMs)} | ` +
      `${f(r.catalogFirstMs)} / ${f(r.catalogNextMs)} / ${f(r.catalogMiddleMs)} | ` +
      `${f(r.tagsFirstMs)} / ${f(r.tagsNextMs)} | ${r.headMs.toFixed(2)} | ${f(r.rssMiB)} |`
    ),
  ].join("\n");
}

/** The garbage collection rows as a Markdown table. */
export function formatGc(rows: GcRow[]): string {
  const opt = (n: number | undefined, digits = 1) => n === undefined ? "—" : n.toFixed(digits);
  return [
    "| unreferenced blobs | collector | time, ms | peak RSS, MiB | blobs deleted | " +
    "manifest HEAD while it runs: median / max, ms (requests) |",
    "|---:|---|---:|---:|---:|---:|",
    ...rows.map((r) =>
      `| ${r.blobs.toLocaleString("en-US")} | ${r.server} | ${f(r.ms)} | ${f(r.peakMiB)} | ` +
      `${r.deleted === undefined ? "—" : r.deleted.toLocaleString("en-US")} | ` +
      (r.heads === undefined
        ? "—"
        : `${opt(r.headMedianMs, 2)} / ${opt(r.headMaxMs)} (${r.heads.toLocaleString("en-US")})`) +
      " |"
    ),
  ].join("\n");
}

if (import.meta.main) {
  const at = (flag: string) => {
    const i = Deno.args.indexOf(flag);
    return i >= 0 ? Deno.args[i + 1] : undefined;
  };
  const list = (value: string | undefined) =>
    value === undefined ? undefined : value === "" ? [] : value.split(",").map(Number);
  const sizes = list(at("--sizes"));
  const gcSizes = list(at("--gc-sizes"));
  const tmpDir = at("--tmp");
  const starts = at("--starts");
  console.log(
    await runGrowthBench({
      ...(sizes && { sizes }),
      ...(gcSizes && { gcSizes }),
      ...(tmpDir && { tmpDir }),
      ...(starts && { starts: Number(starts) }),
    }),
  );
}
