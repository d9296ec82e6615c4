/**
 * The benchmark: berth and distribution started side by side on fresh data directories and driven
 * through the same scenarios, interleaved round by round (the order of the two alternates), so
 * that noise from a shared machine falls on both. Each metric keeps every round's value; the
 * report takes medians.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { curl, load, type LoadSize, pool, request } from "./clients.ts";
import { type Metric, METRICS, type Results } from "./report.ts";
import {
  type BenchServer,
  buildBundle,
  readCpuSeconds,
  readMemory,
  readProc,
  RssSampler,
  startBare,
  startBerth,
  startDistribution,
  startFloor,
} from "./servers.ts";

/** What to run and how big. */
export interface BenchOptions {
  /** Size of the big blob pushed and pulled, bytes. */
  blobSize: number;
  /** PATCH requests in the chunked push. */
  chunks: number;
  /** Rounds of every scenario. */
  rounds: number;
  /** Size of the smaller blob of the one-PATCH pushes (the big blob is the other), bytes. */
  patchSize: number;
  /** Size of one range read, bytes. */
  rangeSize: number;
  /** Range reads per round. */
  rangeReads: number;
  /** Concurrent connections of the load runs. */
  connections: number;
  /** Length of each load run. */
  load: LoadSize;
  /** Tags in the tags/list repository. */
  tags: number;
  /** Repositories for the catalog. */
  repositories: number;
  /** Page size (`n`) of the catalog walk. */
  catalogPage: number;
  /** Layers of the image pushed end to end. */
  layers: number;
  /** Size of each of those layers, bytes. */
  layerSize: number;
  /** Images pushed per round. */
  imagePushes: number;
  /** Parallel blob pushes within one image push. */
  imageConcurrency: number;
  /** Fresh starts of each server measured (start to first answer). */
  starts: number;
  /** Also run a bare `Deno.serve` doing the same I/O (push, get and manifest scenarios). */
  bare?: boolean;
  /** Run only these groups (`start`, `push`, `patch`, `get`, `manifest`, `image`, `tags`,
   * `catalog`). */
  only?: string[];
  /** Where temporary files and data directories go (a fresh folder is made under it). */
  tmpDir?: string;
  /** Progress lines go here (default: nowhere). */
  log?: (line: string) => void;
}

/** Defaults: the full run of issue 4. */
export const DEFAULT_OPTIONS: BenchOptions = {
  blobSize: 1 << 30,
  chunks: 8,
  patchSize: 256 << 20,
  rounds: 3,
  rangeSize: 10 << 20,
  rangeReads: 20,
  connections: 50,
  load: { seconds: 5 },
  tags: 1000,
  repositories: 10_000,
  catalogPage: 1000,
  layers: 50,
  layerSize: 4096,
  imagePushes: 3,
  imageConcurrency: 6,
  starts: 3,
};

/** Everything a run measured. */
export interface BenchRun {
  /** The options used. */
  options: BenchOptions;
  /** Values per metric per server (one per round), or `"n/a"` when the server lacks the API. */
  results: Results;
  /** The servers' names, berth first. */
  servers: string[];
  /** The push floor's name when it ran (push rows only; bench/listen_floor.ts). */
  floor?: string;
  /** The GET floors' names when they ran (blob GET rows only; bench/listen_floor.ts mode `get`):
   * two 1 MiB buffers overlapped, then one of 4 MiB. */
  getFloors?: string[];
  /** Load tools used, for the notes. */
  tools: Set<string>;
  /** `/proc/loadavg` before and after. */
  loadavg: [string, string];
  /** When it started and ended. */
  time: [Date, Date];
  /** The Deno release berth ran on. */
  runtime: string;
  /** Measurements that failed (their rounds are `NaN`), one line each: what, who, why. */
  failures?: string[];
}

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER = "application/vnd.oci.image.layer.v1.tar";
const ACCEPT = { Accept: OCI_MANIFEST };

/** Run the benchmark; servers and temporary files are always cleaned up. */
export async function runBench(options: BenchOptions): Promise<BenchRun> {
  const log = options.log ?? (() => {});
  const started = new Date();
  const loadBefore = await loadavg();
  const work = await Deno.makeTempDir({
    prefix: "berth-bench-",
    ...(options.tmpDir && { dir: options.tmpDir }),
  });
  const servers: BenchServer[] = [];
  let floor: BenchServer | undefined;
  const getFloors: BenchServer[] = [];
  const results: Results = new Map();
  const tools = new Set<string>();
  const record = (metric: Metric, server: BenchServer, value: number | "n/a") => {
    const byServer = results.get(metric.key) ?? new Map<string, number[] | "n/a">();
    results.set(metric.key, byServer);
    const previous = byServer.get(server.name);
    if (value === "n/a") byServer.set(server.name, "n/a");
    else if (previous === undefined || previous === "n/a") byServer.set(server.name, [value]);
    else previous.push(value);
  };
  // A measurement that fails (a load tool's error, a wrong answer) is recorded as failed and the
  // run goes on: one bad row must not lose the others.
  const failures: string[] = [];
  const attempt = async (
    metric: Metric,
    server: BenchServer,
    round: number,
    measure: () => Promise<number>,
  ) => {
    try {
      record(metric, server, await measure());
    } catch (error) {
      record(metric, server, NaN);
      const line = `${metric.label}, ${server.name}, round ${round + 1}: ${
        (error as Error).message.split("\n")[0]
      }`;
      failures.push(line);
      log(`FAILED: ${line}`);
    }
  };
  // berth as shipped: the minified bundle (measureStart starts it too).
  let bundle = "";
  try {
    bundle = await buildBundle(work);
    servers.push(await startBerth(`${work}/berth`, {}, { main: bundle }));
    servers.push(await startDistribution(`${work}/distribution`));
    if (options.bare) servers.push(await startBare(`${work}/bare`));
    const registries = servers.slice(0, 2);
    // The push floor takes part in the push rows only, in the same rotation.
    if (!options.only || options.only.some((group) => group === "push" || group === "patch")) {
      floor = await startFloor(`${work}/floor`);
    }
    const pushers = floor ? [...servers, floor] : servers;
    // Who goes first changes round by round.
    const rotate = (list: BenchServer[], round: number) => {
      const turned = round % 2 === 0 ? list : [...list].reverse();
      const shift = Math.floor(round / 2) % list.length;
      return [...turned.slice(shift), ...turned.slice(0, shift)];
    };
    const order = (round: number) => rotate(servers, round);
    const orderRegistries = (round: number) => rotate(registries, round);
    const rounds = Array.from({ length: options.rounds }, (_, i) => i);
    const runs = (group: string) => !options.only || options.only.includes(group);

    await sleep(300);
    for (const server of servers) {
      record(METRICS.rssIdle, server, (await readMemory(server.pid))?.rss ?? NaN);
    }

    for (const round of runs("start") ? Array.from({ length: options.starts }, (_, i) => i) : []) {
      for (const server of order(round)) {
        log(`start ${round + 1}: ${server.name}`);
        const { wallMs, cpuMs } = await measureStart(server, `${work}/start-${round}`, bundle);
        record(METRICS.startWall, server, wallMs);
        record(METRICS.startCpu, server, cpuMs);
      }
    }

    log(`generating a ${options.blobSize} byte blob`);
    const big = await makeBigBlob(`${work}/blob`, options.blobSize, options.chunks);

    for (const round of runs("push") || runs("get") ? rounds : []) {
      for (const server of rotate(runs("push") ? pushers : servers, round)) {
        log(`round ${round + 1}: ${server.name}: monolithic push`);
        const sampler = new RssSampler(server.pid);
        try {
          await warmMemory(`${work}/warm`, big.size);
          const cpu0 = await readCpuSeconds(server.pid);
          const main0 = await readCpuSeconds(server.pid, server.pid);
          record(METRICS.pushMonolithic, server, await pushMonolithic(server, big, round));
          const cpu = (await readCpuSeconds(server.pid)) - cpu0;
          const main = (await readCpuSeconds(server.pid, server.pid)) - main0;
          record(METRICS.pushCpu, server, cpu / (big.size / (1 << 30)));
          // A Go server's main thread is one of many running goroutines: not recorded.
          if (server.name !== "distribution") {
            record(METRICS.pushMainCpu, server, main / (big.size / (1 << 30)));
          }
          log(`round ${round + 1}: ${server.name}: chunked push`);
          await warmMemory(`${work}/warm`, big.size);
          record(METRICS.pushChunked, server, await pushChunked(server, big, round));
        } finally {
          record(METRICS.rssPush, server, await sampler.stop());
          record(METRICS.rssPushAnon, server, sampler.peakAnon);
        }
      }
    }
    // One PATCH of the same bytes with a Content-Length, then with Transfer-Encoding: chunked (what
    // podman and docker send for a layer compressed on the fly): patchSize, then the big blob.
    const patchBlobs: { blob: BigBlob; length: Metric; chunked: Metric }[] = [];
    if (runs("patch")) {
      if (options.patchSize < big.size) {
        log(`generating a ${options.patchSize} byte blob`);
        const blob = await makeBigBlob(`${work}/patch-blob`, options.patchSize, 1);
        patchBlobs.push({
          blob,
          length: METRICS.patchLength256,
          chunked: METRICS.patchChunked256,
        });
      }
      patchBlobs.push({
        blob: big,
        length: METRICS.patchLengthBig,
        chunked: METRICS.patchChunkedBig,
      });
    }
    for (const round of patchBlobs.length ? rounds : []) {
      for (const server of rotate(pushers, round)) {
        const sampler = new RssSampler(server.pid);
        try {
          for (const [i, { blob, length, chunked }] of patchBlobs.entries()) {
            for (const [metric, encoding] of [[length, "length"], [chunked, "chunked"]] as const) {
              log(`round ${round + 1}: ${server.name}: one PATCH, ${blob.size} bytes, ${encoding}`);
              await warmMemory(`${work}/warm`, blob.size);
              const repo = `bench/patch-${encoding}-${i}-${round}`;
              const pushed = await pushOnePatch(server, blob, repo, encoding);
              record(metric, server, pushed.rate);
              if (metric === METRICS.patchChunkedBig) {
                // A Go server's main thread is one of many running goroutines: not recorded.
                if (server.name !== "distribution") {
                  record(METRICS.patchChunkedBigMainCpu, server, pushed.mainCpu);
                }
                record(METRICS.patchChunkedBigCpu, server, pushed.cpu);
              }
            }
          }
        } finally {
          record(METRICS.rssPatch, server, await sampler.stop());
          record(METRICS.rssPatchAnon, server, sampler.peakAnon);
        }
      }
    }
    for (const server of servers) {
      record(METRICS.rssPeak, server, (await readMemory(server.pid))?.hwm ?? NaN);
    }

    // The pushes leave gigabytes of dirty pages (distribution does not fsync): written back now,
    // not by the kernel's flusher threads during the GETs.
    if (runs("get")) {
      log("sync before the GETs");
      await new Deno.Command("sync", { stdin: "null" }).output();
    }
    // The GET floors serve the same blob file (a hard link: the same page cache) in the same
    // rotation: through two 1 MiB buffers (the next read while the last write goes out, as berth),
    // and through one of 4 MiB (a read, then a write).
    for (const [variant, label] of runs("get") ? GET_FLOORS : []) {
      const dir = `${work}/get-floor-${getFloors.length}`;
      await Deno.mkdir(dir);
      getFloors.push({ ...await startFloor(dir, ["get", variant]), name: `GET floor, ${label}` });
      await Deno.link(big.path, `${dir}/${big.digest.replace(":", "_")}`);
    }
    const getters = [...servers, ...getFloors];
    for (const round of runs("get") ? rounds : []) {
      for (const server of rotate(getters, round)) {
        log(`round ${round + 1}: ${server.name}: blob GET and range reads`);
        await attempt(METRICS.blobGet, server, round, async () => {
          const { rate, cpu } = await getBlob(server, big);
          record(METRICS.getCpu, server, cpu);
          return rate;
        });
        await attempt(
          METRICS.rangeGet,
          server,
          round,
          () => getRanges(server, big, options, round),
        );
      }
    }

    log("pushing the manifest image");
    const image = makeImage(1, 64);
    const layer = image.layers[0]!;
    for (const server of runs("manifest") ? servers : []) {
      // The bare server answers any manifest path; it serves blobs from files named by digest.
      if (server.name.startsWith("bare")) {
        await Deno.writeFile(`${server.dataDir}/${layer.digest.replace(":", "_")}`, layer.bytes);
      } else await pushImage(server, "bench/manifest", "latest", image, 1);
    }
    const smallRequests = [
      ["HEAD", "/v2/bench/manifest/manifests/latest", METRICS.manifestHead],
      ["GET", "/v2/bench/manifest/manifests/latest", METRICS.manifestGet],
      ["GET", "/v2/", METRICS.base],
      ["HEAD", `/v2/bench/manifest/blobs/${layer.digest}`, METRICS.blobHead],
    ] as const;
    for (const round of runs("manifest") ? rounds : []) {
      for (const server of order(round)) {
        for (const [method, path, metric] of smallRequests) {
          log(`round ${round + 1}: ${server.name}: ${metric.label}`);
          const url = `${server.url}${path}`;
          await attempt(metric, server, round, async () => {
            // Unmeasured first: the rate of a warm server (its JavaScript compiled), as in use.
            const warm = Math.min(2000, options.load.requests ?? 2000);
            await load(method, url, options.connections, { requests: warm }, ACCEPT);
            return await loadRate(method, url, options, tools);
          });
        }
      }
    }

    for (const round of runs("image") ? rounds : []) {
      for (const server of orderRegistries(round)) {
        log(`round ${round + 1}: ${server.name}: image pushes`);
        const images = Array.from(
          { length: options.imagePushes },
          () => makeImage(options.layers, options.layerSize),
        );
        const t0 = performance.now();
        for (const [i, image] of images.entries()) {
          await pushImage(server, `bench/image-${round}`, `v${i}`, image, options.imageConcurrency);
        }
        record(METRICS.imagePush, server, images.length / seconds(t0));
      }
    }

    log(`tags: ${options.tags}`);
    const tagged = runs("tags") ? await setupTags(registries, options) : new Set();
    for (const round of runs("tags") ? rounds : []) {
      for (const server of orderRegistries(round)) {
        if (!tagged.has(server.name)) {
          record(METRICS.tagsList, server, "n/a");
          continue;
        }
        log(`round ${round + 1}: ${server.name}: tags/list`);
        const url = `${server.url}/v2/bench/tags/tags/list`;
        await attempt(METRICS.tagsList, server, round, () => loadRate("GET", url, options, tools));
      }
    }

    log(`catalog: ${options.repositories} repositories`);
    const cataloged = runs("catalog") ? await setupCatalog(registries, options) : new Set();
    for (const round of runs("catalog") ? rounds : []) {
      for (const server of orderRegistries(round)) {
        if (!cataloged.has(server.name)) {
          record(METRICS.catalog, server, "n/a");
          continue;
        }
        log(`round ${round + 1}: ${server.name}: catalog walk`);
        await attempt(METRICS.catalog, server, round, () => walkCatalog(server, options));
      }
    }
  } finally {
    for (const server of [...servers, ...(floor ? [floor] : []), ...getFloors]) {
      await server.stop().catch(() => {});
    }
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
  return {
    options,
    results,
    servers: servers.map((s) => s.name),
    ...(floor && { floor: floor.name }),
    ...(getFloors.length && { getFloors: getFloors.map((s) => s.name) }),
    tools,
    loadavg: [loadBefore, await loadavg()],
    time: [started, new Date()],
    runtime: Deno.version.deno,
    failures,
  };
}

/** The big blob: one file, its chunk files, its digest. */
interface BigBlob {
  path: string;
  size: number;
  digest: string;
  chunks: { path: string; start: number; end: number }[];
}

async function makeBigBlob(path: string, size: number, chunks: number): Promise<BigBlob> {
  const hash = createHash("sha256");
  const piece = new Uint8Array(1 << 20);
  const chunkSize = Math.ceil(size / chunks);
  const parts: BigBlob["chunks"] = [];
  const whole = await Deno.open(path, { write: true, createNew: true });
  try {
    for (let start = 0; start < size; start += chunkSize) {
      const end = Math.min(size, start + chunkSize) - 1;
      const partPath = `${path}.${parts.length}`;
      parts.push({ path: partPath, start, end });
      const part = await Deno.open(partPath, { write: true, createNew: true });
      try {
        for (let at = start; at <= end; at += piece.byteLength) {
          const bytes = piece.subarray(0, Math.min(piece.byteLength, end + 1 - at));
          for (let i = 0; i < bytes.byteLength; i += 65536) {
            crypto.getRandomValues(bytes.subarray(i, i + 65536));
          }
          hash.update(bytes);
          await writeAll(whole, bytes);
          await writeAll(part, bytes);
        }
      } finally {
        part.close();
      }
    }
  } finally {
    whole.close();
  }
  return { path, size, digest: `sha256:${hash.digest("hex")}`, chunks: parts };
}

/**
 * Write and delete a scratch file of `size` bytes, so the pages the next push writes into are ones
 * the kernel just used. On this VM memory left free for a few seconds goes back to the host, and
 * touching it again costs the writer's kernel time: `dd` of 1 GiB into a new file took 1.6 s of
 * system time on the first run and 0.23 s on the next ones (measured). Without this, whichever
 * server pushes first after a pause pays that, which swung push rates 2-3x between rounds.
 */
async function warmMemory(path: string, size: number): Promise<void> {
  const zeros = new Uint8Array(1 << 20);
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    for (let at = 0; at < size; at += zeros.byteLength) {
      await writeAll(file, zeros.subarray(0, Math.min(zeros.byteLength, size - at)));
    }
  } finally {
    file.close();
  }
  await Deno.remove(path);
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.byteLength;) done += await file.write(bytes.subarray(done));
}

/** POST to open a session; returns the absolute session URL. */
async function openUpload(server: BenchServer, repo: string): Promise<URL> {
  const { response } = await request(`${server.url}/v2/${repo}/blobs/uploads/`, {
    method: "POST",
    expect: 202,
  });
  return new URL(response.headers.get("Location") ?? "", server.url);
}

function withDigest(url: URL, digest: string): string {
  const copy = new URL(url);
  copy.searchParams.set("digest", digest);
  return copy.href;
}

async function pushMonolithic(server: BenchServer, big: BigBlob, round: number): Promise<number> {
  const t0 = performance.now();
  const session = await openUpload(server, `bench/mono-${round}`);
  const [put] = await curl([{
    url: withDigest(session, big.digest),
    method: "PUT",
    upload: big.path,
    headers: { "Content-Type": "application/octet-stream" },
  }]);
  expectStatus(server, "monolithic PUT", put!.status, 201);
  return big.size / 1e6 / seconds(t0);
}

async function pushChunked(server: BenchServer, big: BigBlob, round: number): Promise<number> {
  const t0 = performance.now();
  let session = await openUpload(server, `bench/chunked-${round}`);
  for (const chunk of big.chunks) {
    const [patch] = await curl([{
      url: session.href,
      method: "PATCH",
      upload: chunk.path,
      headers: {
        "Content-Type": "application/octet-stream",
        "Content-Range": `${chunk.start}-${chunk.end}`,
      },
    }]);
    expectStatus(server, "PATCH", patch!.status, 202);
    session = new URL(patch!.location, server.url);
  }
  await request(withDigest(session, big.digest), { method: "PUT", expect: 201 });
  return big.size / 1e6 / seconds(t0);
}

/**
 * POST, one PATCH of the whole blob (`curl -T`), PUT `?digest=`: MB/s over the three, and the
 * server's CPU seconds per GiB during the PATCH, of its main thread and of all its threads.
 */
async function pushOnePatch(
  server: BenchServer,
  blob: BigBlob,
  repo: string,
  encoding: "length" | "chunked",
): Promise<{ rate: number; mainCpu: number; cpu: number }> {
  const t0 = performance.now();
  const session = await openUpload(server, repo);
  const headers: Record<string, string> = { "Content-Type": "application/octet-stream" };
  if (encoding === "chunked") headers["Transfer-Encoding"] = "chunked";
  const main0 = await readCpuSeconds(server.pid, server.pid);
  const all0 = await readCpuSeconds(server.pid);
  const [patch] = await curl([{ url: session.href, method: "PATCH", upload: blob.path, headers }]);
  const main1 = await readCpuSeconds(server.pid, server.pid);
  const all1 = await readCpuSeconds(server.pid);
  expectStatus(server, `PATCH (${encoding})`, patch!.status, 202);
  const next = new URL(patch!.location, server.url);
  await request(withDigest(next, blob.digest), { method: "PUT", expect: 201 });
  const gib = blob.size / (1 << 30);
  return {
    rate: blob.size / 1e6 / seconds(t0),
    mainCpu: (main1 - main0) / gib,
    cpu: (all1 - all0) / gib,
  };
}

/** The GET floor's variants in the bench (bench/listen_floor.ts mode `get`), and their names. */
const GET_FLOORS = [["overlap:1", "2 × 1 MiB"], ["read:4", "1 × 4 MiB"]] as const;

/** Whole reads of the blob measured per round (the round's value is their median). */
const GETS_PER_ROUND = 3;

/** The median MB/s of the measured reads, and the server's CPU seconds per GiB over them. */
async function getBlob(
  server: BenchServer,
  big: BigBlob,
): Promise<{ rate: number; cpu: number }> {
  const url = `${server.url}/v2/bench/mono-0/blobs/${big.digest}`;
  // One unmeasured read first: the server's buffers then come from memory it already uses, as in
  // a registry serving steadily (a first read after a pause spent ~35,000 page faults on them).
  // Then several measured ones: single reads of the same server swung 1.1-3.2 GB/s.
  await curl([{ url }]);
  const rates: number[] = [];
  const cpu0 = await readCpuSeconds(server.pid);
  for (let i = 0; i < GETS_PER_ROUND; i++) {
    const t0 = performance.now();
    const [get] = await curl([{ url }]);
    expectStatus(server, "blob GET", get!.status, 200);
    if (get!.downloaded !== big.size) {
      throw new Error(`${server.name}: blob GET gave ${get!.downloaded} bytes, not ${big.size}`);
    }
    rates.push(big.size / 1e6 / seconds(t0));
  }
  const cpu = (await readCpuSeconds(server.pid)) - cpu0;
  return {
    rate: rates.sort((a, b) => a - b)[Math.floor(rates.length / 2)]!,
    cpu: cpu / (GETS_PER_ROUND * big.size / (1 << 30)),
  };
}

/** Range reads at spread offsets over one keep-alive connection; MB/s over the transfers. */
async function getRanges(
  server: BenchServer,
  big: BigBlob,
  options: BenchOptions,
  round: number,
): Promise<number> {
  const length = Math.min(options.rangeSize, big.size);
  const url = `${server.url}/v2/bench/mono-0/blobs/${big.digest}`;
  const steps = Array.from({ length: options.rangeReads }, (_, i) => {
    const slots = Math.max(1, Math.floor(big.size / length));
    const start = ((i * 7 + round * 3) % slots) * length;
    return { url, range: `${start}-${start + length - 1}` };
  });
  const transfers = await curl(steps);
  let bytes = 0;
  let time = 0;
  for (const t of transfers) {
    expectStatus(server, "range GET", t.status, 206);
    if (t.downloaded !== length) throw new Error(`${server.name}: range read gave ${t.downloaded}`);
    bytes += t.downloaded;
    time += t.seconds;
  }
  return bytes / 1e6 / time;
}

/**
 * Start a fresh process of the kind `like` is on an empty data directory: wall time until it
 * first answers `GET /v2/` (polled every 5 ms), and the CPU (user + system) it used until then;
 * berth from `bundle`.
 */
async function measureStart(
  like: BenchServer,
  dataDir: string,
  bundle: string,
): Promise<{ wallMs: number; cpuMs: number }> {
  const start = like.name === "berth"
    ? (dir: string) => startBerth(dir, {}, { main: bundle })
    : like.name === "distribution"
    ? startDistribution
    : startBare;
  await Deno.mkdir(dataDir, { recursive: true });
  const t0 = performance.now();
  const server = await start(dataDir);
  const wallMs = performance.now() - t0;
  const cpuMs = (await readCpuSeconds(server.pid)) * 1000;
  await server.stop();
  return { wallMs, cpuMs };
}

async function loadRate(
  method: "GET" | "HEAD",
  url: string,
  options: BenchOptions,
  tools: Set<string>,
): Promise<number> {
  const result = await load(method, url, options.connections, options.load, ACCEPT);
  tools.add(result.tool);
  if (result.errors > 0 || result.completed === 0) {
    throw new Error(`${method} ${url}: ${result.errors} errors of ${result.completed} requests`);
  }
  return result.rate;
}

/** An image to push: blobs (config first) and the manifest that names them. */
export interface Image {
  config: Blob;
  layers: Blob[];
  manifest: Uint8Array<ArrayBuffer>;
}

export interface Blob {
  bytes: Uint8Array<ArrayBuffer>;
  digest: string;
}

function makeBlob(bytes: Uint8Array<ArrayBuffer>): Blob {
  return { bytes, digest: `sha256:${createHash("sha256").update(bytes).digest("hex")}` };
}

/** A random image of `layers` layers of `layerSize` bytes (for tools that drive the bench). */
export function makeImage(layers: number, layerSize: number): Image {
  const layerBlobs = Array.from({ length: layers }, () => {
    const bytes = new Uint8Array(layerSize);
    crypto.getRandomValues(bytes);
    return makeBlob(bytes);
  });
  const config = makeBlob(new TextEncoder().encode(JSON.stringify({
    architecture: "amd64",
    os: "linux",
    rootfs: { type: "layers", diff_ids: layerBlobs.map((l) => l.digest) },
    config: { Labels: { nonce: crypto.randomUUID() } },
  })));
  const descriptor = (mediaType: string, blob: Blob) => ({
    mediaType,
    digest: blob.digest,
    size: blob.bytes.byteLength,
  });
  const manifest = new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: descriptor(OCI_CONFIG, config),
    layers: layerBlobs.map((l) => descriptor(OCI_LAYER, l)),
  }));
  return { config, layers: layerBlobs, manifest };
}

/** Push an image as clients do: per blob HEAD → POST → PUT with the bytes; then the manifest. */
export async function pushImage(
  server: BenchServer,
  repo: string,
  tag: string,
  image: Image,
  concurrency: number,
): Promise<void> {
  await pool([image.config, ...image.layers], concurrency, async (blob) => {
    const head = await fetch(`${server.url}/v2/${repo}/blobs/${blob.digest}`, { method: "HEAD" });
    await head.body?.cancel();
    if (head.status === 200) return;
    const session = await openUpload(server, repo);
    await request(withDigest(session, blob.digest), {
      method: "PUT",
      body: blob.bytes,
      headers: { "Content-Type": "application/octet-stream" },
      expect: 201,
    });
  });
  await request(`${server.url}/v2/${repo}/manifests/${tag}`, {
    method: "PUT",
    body: image.manifest,
    headers: { "Content-Type": OCI_MANIFEST },
    expect: 201,
  });
}

/** Whether a server has an endpoint: anything but 404 (and 405) counts. */
async function hasEndpoint(server: BenchServer, path: string): Promise<boolean> {
  const response = await fetch(`${server.url}${path}`);
  await response.body?.cancel();
  return response.status !== 404 && response.status !== 405;
}

/** Tag one manifest `options.tags` times in `bench/tags` on every server with a tags API. */
async function setupTags(servers: BenchServer[], options: BenchOptions): Promise<Set<string>> {
  const ready = new Set<string>();
  const image = makeImage(1, 64);
  for (const server of servers) {
    await pushImage(server, "bench/tags", "t0", image, 1);
    if (!(await hasEndpoint(server, "/v2/bench/tags/tags/list"))) continue;
    const tags = Array.from({ length: options.tags - 1 }, (_, i) => `t${i + 1}`);
    await pool(tags, 8, async (tag) => {
      await request(`${server.url}/v2/bench/tags/manifests/${tag}`, {
        method: "PUT",
        body: image.manifest,
        headers: { "Content-Type": OCI_MANIFEST },
        expect: 201,
      });
    });
    const { text } = await request(`${server.url}/v2/bench/tags/tags/list`, { expect: 200 });
    const count = (JSON.parse(text) as { tags?: string[] }).tags?.length ?? 0;
    if (count !== options.tags) throw new Error(`${server.name}: tags/list lists ${count} tags`);
    ready.add(server.name);
  }
  return ready;
}

/** Make `options.repositories` repositories on every server with a catalog (blob mounts). */
async function setupCatalog(servers: BenchServer[], options: BenchOptions): Promise<Set<string>> {
  const ready = new Set<string>();
  const image = makeImage(1, 64);
  const layer = image.layers[0]!.digest;
  const width = String(options.repositories).length;
  const names = Array.from(
    { length: options.repositories },
    (_, i) => `bench/catalog/r${String(i).padStart(width, "0")}`,
  );
  for (const server of servers) {
    if (!(await hasEndpoint(server, "/v2/_catalog"))) continue;
    await pushImage(server, "bench/catalog-source", "latest", image, 1);
    await pool(names, 16, async (name) => {
      await request(
        `${server.url}/v2/${name}/blobs/uploads/?mount=${layer}&from=bench/catalog-source`,
        { method: "POST", expect: 201 },
      );
    });
    ready.add(server.name);
  }
  return ready;
}

/** Walk the whole catalog, `n` at a time, following `Link`; returns pages per second. */
async function walkCatalog(server: BenchServer, options: BenchOptions): Promise<number> {
  const t0 = performance.now();
  let next: string | undefined = `/v2/_catalog?n=${options.catalogPage}`;
  let pages = 0;
  let names = 0;
  while (next) {
    const { response, text } = await request(new URL(next, server.url).href, { expect: 200 });
    pages++;
    names += (JSON.parse(text) as { repositories?: string[] }).repositories?.length ?? 0;
    const link = response.headers.get("Link");
    next = link ? /<([^>]+)>/.exec(link)?.[1] : undefined;
    if (pages > options.repositories + 100) throw new Error(`${server.name}: endless catalog`);
  }
  if (names < options.repositories) {
    throw new Error(`${server.name}: catalog walk found ${names} repositories`);
  }
  return pages / seconds(t0);
}

function expectStatus(server: BenchServer, what: string, status: number, expected: number): void {
  if (status !== expected) throw new Error(`${server.name}: ${what} answered ${status}`);
}

function seconds(t0: number): number {
  return (performance.now() - t0) / 1000;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function loadavg(): Promise<string> {
  return (await readProc("/proc/loadavg"))?.split(" ").slice(0, 3).join(" ") ?? "?";
}
