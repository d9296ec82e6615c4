/**
 * `deno task bench:growth`: how cost grows with what is stored, berth next to distribution. For
 * each size N (default 1,000, 10,000, 100,000) one data directory is written straight in the
 * shared layout: one repository with N tags, and N repositories. Then each server is started on it
 * and measured: start to first answer, `tags/list` of the N tags, the first `_catalog` page
 * (`n=100`, the first request and the median of the next ones), a manifest HEAD by tag in the
 * N-tag repository, and the server's RSS after all that.
 *
 * ```
 * deno task bench:growth [--sizes 1000,10000,100000] [--tmp DIR]
 * ```
 *
 * @module
 */
import { createHash } from "node:crypto";
import { type BenchServer, readMemory, startBerth, startDistribution } from "./servers.ts";

const MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json";

/** One measured row. */
interface Row {
  size: number;
  server: string;
  startMs: number;
  tagsListMs: number;
  catalogFirstMs: number;
  catalogNextMs: number;
  headMs: number;
  rssMiB: number;
}

/** Write a data directory with one repository of `size` tags and `size` more repositories. */
function writeTree(root: string, size: number): void {
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
  const blob = (bytes: Uint8Array) => {
    const hex = digest(bytes).slice(7);
    const dir = `${v2}/blobs/sha256/${hex.slice(0, 2)}/${hex}`;
    Deno.mkdirSync(dir, { recursive: true });
    Deno.writeFileSync(`${dir}/data`, bytes);
    return hex;
  };
  const configHex = blob(config);
  const manifestHex = blob(manifest);
  const link = enc.encode(`sha256:${manifestHex}`);
  const repo = (name: string, tags: string[]) => {
    const base = `${v2}/repositories/${name}`;
    for (const hex of [configHex]) {
      Deno.mkdirSync(`${base}/_layers/sha256/${hex}`, { recursive: true });
      Deno.writeFileSync(`${base}/_layers/sha256/${hex}/link`, enc.encode(`sha256:${hex}`));
    }
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

function digest(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** Milliseconds of one GET/HEAD (body read to the end); throws on a status other than 200. */
async function timed(url: string, method = "GET"): Promise<number> {
  const t0 = performance.now();
  const response = await fetch(url, { method, headers: { Accept: MANIFEST_TYPE } });
  await response.arrayBuffer();
  if (response.status !== 200) throw new Error(`${method} ${url}: ${response.status}`);
  return performance.now() - t0;
}

async function medianOf(times: number, run: () => Promise<number>): Promise<number> {
  const values: number[] = [];
  for (let i = 0; i < times; i++) values.push(await run());
  values.sort((a, b) => a - b);
  return values[values.length >> 1]!;
}

async function measure(
  size: number,
  start: () => Promise<BenchServer>,
): Promise<Row> {
  const t0 = performance.now();
  const server = await start();
  const startMs = performance.now() - t0;
  try {
    const catalogFirstMs = await timed(`${server.url}/v2/_catalog?n=100`);
    const catalogNextMs = await medianOf(9, () => timed(`${server.url}/v2/_catalog?n=100`));
    const tagsListMs = await medianOf(5, () => timed(`${server.url}/v2/grow/tags/tags/list`));
    const tag = `t${String(size >> 1).padStart(6, "0")}`;
    const head = `${server.url}/v2/grow/tags/manifests/${tag}`;
    await timed(head, "HEAD");
    const headMs = await medianOf(51, () => timed(head, "HEAD"));
    const rssMiB = ((await readMemory(server.pid))?.rss ?? NaN) / (1 << 20);
    return {
      size,
      server: server.name,
      startMs,
      tagsListMs,
      catalogFirstMs,
      catalogNextMs,
      headMs,
      rssMiB,
    };
  } finally {
    await server.stop();
  }
}

/** Measure every size on berth and distribution; returns the rows. */
export async function runGrowth(sizes: number[], tmpDir?: string): Promise<Row[]> {
  const rows: Row[] = [];
  for (const size of sizes) {
    const dir = await Deno.makeTempDir({ prefix: "berth-growth-", ...(tmpDir && { dir: tmpDir }) });
    try {
      const t0 = performance.now();
      writeTree(`${dir}/data`, size);
      console.error(`${size}: tree written in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      for (const server of ["distribution", "berth"]) {
        const row = await measure(
          size,
          () => server === "berth" ? startBerth(`${dir}/data`) : startDistribution(`${dir}/data`),
        );
        console.error(JSON.stringify(row));
        rows.push(row);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
  return rows;
}

/** The rows as a Markdown table. */
export function formatGrowth(rows: Row[]): string {
  const f = (n: number) => n >= 100 ? Math.round(n).toLocaleString("en-US") : n.toFixed(1);
  return [
    "| N | server | start to first answer, ms | tags/list of N tags, ms | first `_catalog` page " +
    "(n=100): first / next, ms | manifest HEAD by tag (N tags), ms | RSS after, MiB |",
    "|---:|---|---:|---:|---:|---:|---:|",
    ...rows.map((r) =>
      `| ${r.size.toLocaleString("en-US")} | ${r.server} | ${f(r.startMs)} | ${
        f(r.tagsListMs)
      } | ` +
      `${f(r.catalogFirstMs)} / ${f(r.catalogNextMs)} | ${r.headMs.toFixed(2)} | ${f(r.rssMiB)} |`
    ),
  ].join("\n");
}

if (import.meta.main) {
  const at = (flag: string) => {
    const i = Deno.args.indexOf(flag);
    return i >= 0 ? Deno.args[i + 1] : undefined;
  };
  const sizes = (at("--sizes") ?? "1000,10000,100000").split(",").map(Number);
  const rows = await runGrowth(sizes, at("--tmp"));
  console.log(formatGrowth(rows));
  console.log(
    `\nDeno ${Deno.version.deno}; load average ${
      (await Deno.readTextFile("/proc/loadavg")).trim()
    }`,
  );
}
