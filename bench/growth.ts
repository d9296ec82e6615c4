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

/**
 * Write (or extend) a data directory in distribution's layout: one repository `grow/tags` with
 * `size` tags and `size` repositories `grow/r<i>` of one tag each. With `from`, a tree written
 * for `from` is extended to `size` (only the new tags and repositories are written).
 *
 * Every folder is made one level at a time (no recursive `mkdir`, which tries the whole path
 * first), and every `link` file is a hard link to one of two files holding a digest: the tree
 * reads the same to both servers, costs one inode per folder, and nothing in this bench writes a
 * link in place.
 */
export function writeTree(root: string, size: number, from = 0): void {
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
  // The two link contents, written once beside the data directory (on the same filesystem);
  // every link of the tree is a hard link to one of them.
  const links = `${root}.links`;
  const manifestLink = `${links}/manifest`;
  const configLink = `${links}/config`;
  if (from === 0) {
    Deno.mkdirSync(links, { recursive: true });
    Deno.writeFileSync(manifestLink, enc.encode(`sha256:${manifestHex}`));
    Deno.writeFileSync(configLink, enc.encode(`sha256:${configHex}`));
  }
  const dirs = (base: string, ...path: string[]) => {
    for (const part of path) Deno.mkdirSync(base = `${base}/${part}`);
    return base;
  };
  const tag = (tags: string, name: string) => {
    const current = dirs(tags, name, "current");
    Deno.linkSync(manifestLink, `${current}/link`);
    Deno.linkSync(manifestLink, `${dirs(`${tags}/${name}`, "index", "sha256", manifestHex)}/link`);
  };
  const repo = (base: string) => {
    Deno.linkSync(configLink, `${dirs(base, "_layers", "sha256", configHex)}/link`);
    const revisions = dirs(base, "_manifests", "revisions", "sha256", manifestHex);
    Deno.linkSync(manifestLink, `${revisions}/link`);
    return dirs(`${base}/_manifests`, "tags");
  };
  const repositories = `${v2}/repositories/grow`;
  const tagged = `${repositories}/tags`;
  if (from === 0) {
    Deno.mkdirSync(tagged, { recursive: true });
    repo(tagged);
  }
  for (let i = from; i < size; i++) tag(`${tagged}/_manifests/tags`, `t${pad(i)}`);
  for (let i = from; i < size; i++) tag(repo(dirs(repositories, `r${pad(i)}`)), "latest");
}

/** Index `i` as the six digits the tree's names use. */
function pad(i: number): string {
  return String(i).padStart(6, "0");
}

/** Add `count` blobs no manifest names (small, distinct) to a data directory. */
function writeGarbage(root: string, count: number): void {
  const v2 = `${root}/docker/registry/v2`;
  const enc = new TextEncoder();
  for (let i = 0; i < count; i++) writeBlob(v2, enc.encode(`garbage ${i}`));
}

function writeBlob(v2: string, bytes: Uint8Array): string {
  const hex = digest(bytes).slice(7);
  const prefix = `${v2}/blobs/sha256/${hex.slice(0, 2)}`;
  try {
    Deno.mkdirSync(`${prefix}/${hex}`);
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) return hex;
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    Deno.mkdirSync(`${prefix}/${hex}`, { recursive: true });
  }
  Deno.writeFileSync(`${prefix}/${hex}/data`, bytes);
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
    const middle = `${catalog}&last=grow/r${pad(size >> 1)}`;
    const catalogMiddleMs = await medianOf(9, () => timed(middle));
    const tags = `${server.url}/v2/grow/tags/tags/list`;
    const tagsFirstMs = await timed(tags);
    const tagsNextMs = await medianOf(5, () => timed(tags));
    const head = `${server.url}/v2/grow/tags/manifests/t${pad(size >> 1)}`;
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
          name === "berth" ? startBerth(data, {}, allowAllFor(data)) : startDistribution(data)
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
    }, allowAllFor(data));
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
      const report = await response.json() as { blobsDeletedCount?: number };
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
        deleted: report.blobsDeletedCount ?? 0,
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

/** berth may serve from under `/dev` only with `--allow-all`. */
function allowAllFor(data: string): { allowAll: boolean } {
  return { allowAll: data.startsWith("/dev/") };
}

async function makeTemp(tmpDir?: string): Promise<string> {
  return await Deno.makeTempDir({ prefix: "berth-growth-", ...(tmpDir && { dir: tmpDir }) });
}

/**
 * Where the trees go: `/dev/shm` (memory) when it is there with room for the largest tree, else
 * `tmpDir`. On this VM's disk (ext4 mounted with `discard`) removing a 10,000 tree took 200 s of
 * waiting on the disk (1.6 s of CPU); in memory, 6 s.
 */
async function treeDir(largest: number, tmpDir?: string): Promise<string | undefined> {
  // About 19 folders per repository and tag, 2 inodes per unreferenced blob.
  const needed = largest * 20 + 10_000;
  try {
    const { success, stdout } = await new Deno.Command("df", {
      args: ["--output=iavail,avail", "/dev/shm"],
      stdout: "piped",
      stderr: "null",
    }).output();
    const [inodes, kib] = new TextDecoder().decode(stdout).trim().split("\n").at(-1)!.trim()
      .split(/\s+/).map(Number);
    // Folders cost no pages in memory; each unreferenced blob's data file costs one (4 KiB).
    if (success && inodes! > needed * 1.2 && kib! > (largest * 4 + (1 << 20)) * 1.2) {
      return "/dev/shm";
    }
  } catch {
    // No `df`: the temporary folder.
  }
  return tmpDir;
}

/** Whether this process may write under `/dev` (Deno asks for `--allow-all` there). */
function mayWriteDev(): boolean {
  const dir = Deno.makeTempDirSync({ dir: "/dev/shm", prefix: "berth-growth-" });
  try {
    Deno.writeFileSync(`${dir}/probe`, new Uint8Array());
    return true;
  } catch {
    return false;
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

/** The group in a child process with `--allow-all` (for `/dev/shm`); its report is its output. */
async function runInChild(options: GrowthOptions): Promise<string> {
  const list = (values: number[] | undefined) => values && values.join(",");
  const args = [
    "run",
    "--allow-all",
    new URL(import.meta.url).pathname,
    ...(options.sizes ? ["--sizes", list(options.sizes)!] : []),
    ...(options.gcSizes ? ["--gc-sizes", list(options.gcSizes)!] : []),
    ...(options.starts ? ["--starts", String(options.starts)] : []),
    ...(options.tmpDir ? ["--tmp", options.tmpDir] : []),
  ];
  const child = new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "inherit" });
  const { success, code, stdout } = await child.output();
  if (!success) throw new Error(`bench/growth.ts: exit ${code}`);
  return new TextDecoder().decode(stdout).trimEnd() + "\n";
}

/** Measure everything; returns the Markdown section. */
export async function runGrowthBench(options: GrowthOptions = {}): Promise<string> {
  const log = options.log ?? ((line: string) => console.error(line));
  const { sizes = [1000, 10_000, 100_000], gcSizes = [10_000, 100_000], starts = 5 } = options;
  const began = performance.now();
  const largest = Math.max(0, ...sizes, ...gcSizes);
  const trees = await treeDir(largest, options.tmpDir);
  if (trees === "/dev/shm" && !mayWriteDev()) return await runInChild(options);
  log(`growth: trees in ${trees ?? "the system temporary folder"}`);
  const startRows = await measureStarts(starts, options.tmpDir);
  for (const row of startRows) log(`growth: start ${JSON.stringify(row)}`);
  const rows: Row[] = [];
  // One tree, extended from each size to the next: written once, removed once.
  const dir = await makeTemp(trees);
  try {
    let written = 0;
    for (const size of [...sizes].sort((a, b) => a - b)) {
      const t0 = performance.now();
      writeTree(`${dir}/data`, size, written);
      written = size;
      log(`growth: ${size}: tree written in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      for (const name of ["distribution", "berth"]) {
        const data = `${dir}/data`;
        const row = await measure(
          size,
          () =>
            name === "berth" ? startBerth(data, {}, allowAllFor(data)) : startDistribution(data),
        );
        log(`growth: ${JSON.stringify(row)}`);
        rows.push(row);
      }
    }
  } finally {
    const t0 = performance.now();
    await Deno.remove(dir, { recursive: true });
    log(`growth: tree removed in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  const gcRows: GcRow[] = [];
  for (const blobs of gcSizes) {
    for (const row of await measureGc(blobs, trees)) {
      log(`growth: gc ${JSON.stringify(row)}`);
      gcRows.push(row);
    }
  }
  const minutes = (performance.now() - began) / 60_000;
  const load = (await readProc("/proc/loadavg"))?.split(" ").slice(0, 3).join(" ");
  return [
    "## How cost grows",
    "",
    `Deno ${Deno.version.deno}; ${minutes.toFixed(1)} min; trees in ` +
    `${trees === "/dev/shm" ? "memory (/dev/shm)" : "the temporary folder"}; load average ` +
    `${load} at the end (a shared machine: compare within a row).`,
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
