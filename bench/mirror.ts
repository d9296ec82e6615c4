/**
 * The pull-through cache scenario (`deno task bench --only mirror`, or `deno task bench:mirror`):
 * an image with one big layer (1 GiB by default) in a local upstream (Debian's `docker-registry`),
 * pulled through berth (`REGISTRY_PROXY_REMOTEURL`) and through distribution as a cache
 * (`proxy.remoteurl`), each cold (a fresh cache every round) then warm, against a direct pull from
 * the upstream and a pull of the same image pushed into a plain berth. A pull is the manifest GET
 * then every blob by curl (one keep-alive connection, bodies discarded), timed end to end.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { curl } from "./clients.ts";
import { median } from "./report.ts";
import {
  type BenchServer,
  freePort,
  readCpuSeconds,
  RssSampler,
  startBerth,
  startDistribution,
} from "./servers.ts";

/** Options of the mirror scenario. */
export interface MirrorBenchOptions {
  /** Size of the image's layer, bytes (default 1 GiB). */
  layerSize: number;
  /** Rounds (medians reported). */
  rounds: number;
  /** Where temporary data goes (default: the system temp dir). */
  tmpDir?: string;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** Defaults of {@link MirrorBenchOptions}. */
export const MIRROR_DEFAULTS: MirrorBenchOptions = { layerSize: 1 << 30, rounds: 3 };

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const REPO = "bench/mirror";
const TAG = "v1";

/** MB/s of each kind of pull, every round. */
interface Figures {
  direct: number[];
  local: number[];
  berthCold: number[];
  berthWarm: number[];
  distCold: number[];
  distWarm: number[];
  berthRss: number[];
  distRss: number[];
  berthCpu: number[];
  distCpu: number[];
  /** The fill alone (bench/mirror_floor.ts), cold, and its CPU per GiB. */
  floor: number[];
  floorCpu: number[];
  /** CPU per GiB of the main thread (JavaScript) of berth and of the floor. */
  berthMainCpu: number[];
  floorMainCpu: number[];
  /** The upstream's CPU per GiB: serving a direct pull, and filling berth. */
  upstreamDirectCpu: number[];
  upstreamFillCpu: number[];
}

/** Run the scenario; returns its Markdown section. Servers and files are always cleaned up. */
export async function runMirrorBench(
  options: Partial<MirrorBenchOptions> = {},
): Promise<string> {
  const o = { ...MIRROR_DEFAULTS, ...options };
  const log = o.log ?? (() => {});
  const started = new Date();
  const work = await Deno.makeTempDir({
    prefix: "berth-bench-mirror-",
    ...(o.tmpDir && { dir: o.tmpDir }),
  });
  const running: BenchServer[] = [];
  const figures: Figures = {
    direct: [],
    local: [],
    berthCold: [],
    berthWarm: [],
    distCold: [],
    distWarm: [],
    berthRss: [],
    distRss: [],
    berthCpu: [],
    distCpu: [],
    floor: [],
    floorCpu: [],
    berthMainCpu: [],
    floorMainCpu: [],
    upstreamDirectCpu: [],
    upstreamFillCpu: [],
  };
  try {
    log(`mirror: generating a ${o.layerSize} byte layer`);
    const layer = await writeLayer(`${work}/layer`, o.layerSize);
    const upstream = await startDistribution(`${work}/upstream`);
    running.push(upstream);
    const local = await startBerth(`${work}/local`);
    running.push(local);
    for (const server of [upstream, local]) await pushImage(server, layer);
    const total = o.layerSize + layer.configBytes.byteLength;
    for (let round = 0; round < o.rounds; round++) {
      log(`mirror: round ${round + 1}: direct and local pulls`);
      const perGib = async (pid: number, before: number) =>
        ((await readCpuSeconds(pid)) - before) / (total / (1 << 30));
      const mainPerGib = async (pid: number, before: number) =>
        ((await readCpuSeconds(pid, pid)) - before) / (total / (1 << 30));
      const direct = await readCpuSeconds(upstream.pid);
      figures.direct.push(await pull(upstream, total));
      figures.upstreamDirectCpu.push(await perGib(upstream.pid, direct));
      figures.local.push(await pull(local, total));
      log(`mirror: round ${round + 1}: the fill's floor`);
      const floor = await startFloor(`${work}/floor`, upstream.url);
      running.push(floor);
      try {
        await warmMemory(`${work}/warm`, o.layerSize);
        const cpu = await readCpuSeconds(floor.pid);
        const main = await readCpuSeconds(floor.pid, floor.pid);
        figures.floor.push(await pull(floor, total));
        figures.floorCpu.push(await perGib(floor.pid, cpu));
        figures.floorMainCpu.push(await mainPerGib(floor.pid, main));
      } finally {
        running.splice(running.indexOf(floor), 1);
        await floor.stop();
      }
      const kinds = round % 2 === 0 ? ["berth", "distribution"] : ["distribution", "berth"];
      for (const kind of kinds) {
        const dir = `${work}/cache-${kind}-${round}`;
        const cache = kind === "berth"
          ? await startBerth(dir, { REGISTRY_PROXY_REMOTEURL: upstream.url })
          : await startDistribution(dir, { proxy: upstream.url });
        running.push(cache);
        try {
          log(`mirror: round ${round + 1}: ${kind}: cold pull`);
          await warmMemory(`${work}/warm`, o.layerSize);
          const sampler = new RssSampler(cache.pid);
          const cpu = await readCpuSeconds(cache.pid);
          const upstreamCpu = await readCpuSeconds(upstream.pid);
          const main = await readCpuSeconds(cache.pid, cache.pid);
          const cold = await pull(cache, total).finally(async () => {
            (kind === "berth" ? figures.berthRss : figures.distRss).push(await sampler.stop());
          });
          (kind === "berth" ? figures.berthCpu : figures.distCpu).push(
            await perGib(cache.pid, cpu),
          );
          if (kind === "berth") {
            figures.upstreamFillCpu.push(await perGib(upstream.pid, upstreamCpu));
            figures.berthMainCpu.push(await mainPerGib(cache.pid, main));
          }
          log(`mirror: round ${round + 1}: ${kind}: warm pull`);
          const warm = await pull(cache, total);
          (kind === "berth" ? figures.berthCold : figures.distCold).push(cold);
          (kind === "berth" ? figures.berthWarm : figures.distWarm).push(warm);
        } finally {
          running.splice(running.indexOf(cache), 1);
          await cache.stop();
          await Deno.remove(dir, { recursive: true }).catch(() => {});
        }
      }
    }
  } finally {
    for (const server of running) await server.stop();
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
  return formatMirror(figures, o, [started, new Date()]);
}

/** The Markdown section of a run. */
function formatMirror(
  f: Figures,
  o: MirrorBenchOptions,
  time: [Date, Date],
): string {
  const m = (values: number[]) => values.length ? median(values) : NaN;
  const cell = (values: number[]) =>
    values.length
      ? `${m(values).toFixed(0)} (${Math.min(...values).toFixed(0)}–${
        Math.max(...values).toFixed(0)
      })`
      : "n/a";
  const ratio = (a: number[], b: number[], goal: number) => {
    const r = m(a) / m(b);
    return `${r.toFixed(2)}× | ≥ ${goal}× | ${r >= goal ? "yes" : "NO"}`;
  };
  const mib = (values: number[]) => values.length ? `${(m(values) / (1 << 20)).toFixed(0)}` : "n/a";
  return [
    `## Pull-through cache (mirror)`,
    "",
    `Run ${time[0].toISOString()} → ${time[1].toISOString()}; ${o.rounds} rounds; an image of ` +
    `one ${(o.layerSize / (1 << 20)).toFixed(0)} MiB layer in a local distribution upstream; ` +
    `medians, (min–max); MB/s over manifest + blobs (curl).`,
    "",
    "| pull | MB/s | vs | ratio | goal | met |",
    "|---|---:|---|---:|---|---|",
    `| berth cache, cold | ${cell(f.berthCold)} | direct from upstream: ${cell(f.direct)} | ${
      ratio(f.berthCold, f.direct, 0.8)
    } |`,
    `| distribution cache, cold | ${cell(f.distCold)} | direct from upstream: ${cell(f.direct)} | ${
      ratio(f.distCold, f.direct, 0.8)
    } |`,
    `| floor: the fill alone, cold (bench/mirror_floor.ts) | ${
      cell(f.floor)
    } | direct from upstream: ${cell(f.direct)} | ${ratio(f.floor, f.direct, 0.8)} |`,
    `| berth cache, warm | ${cell(f.berthWarm)} | local pull from berth: ${cell(f.local)} | ${
      ratio(f.berthWarm, f.local, 0.9)
    } |`,
    `| distribution cache, warm | ${cell(f.distWarm)} | local pull from distribution: ${
      cell(f.direct)
    } | ${ratio(f.distWarm, f.direct, 0.9)} |`,
    "",
    `Cache process during the cold pull: peak RSS berth ${mib(f.berthRss)} MiB, distribution ` +
    `${mib(f.distRss)} MiB; CPU per GiB berth ${m(f.berthCpu).toFixed(2)} s, distribution ` +
    `${m(f.distCpu).toFixed(2)} s, the floor ${
      m(f.floorCpu).toFixed(2)
    } s. The floor is a server ` +
    `doing only what a cold fill must (fetch, SHA-256, file write + fsync, send; no storage ` +
    `layout, session or other clients): what this runtime achieves on this machine. Of that CPU, ` +
    `the main (JavaScript) thread: berth ${m(f.berthMainCpu).toFixed(2)} s, the floor ` +
    `${m(f.floorMainCpu).toFixed(2)} s (the rest: file writes and fsync on the runtime's ` +
    `blocking threads). The ` +
    `upstream's CPU per GiB: ${m(f.upstreamDirectCpu).toFixed(2)} s serving a direct pull, ` +
    `${
      m(f.upstreamFillCpu).toFixed(2)
    } s filling berth (a cold pull runs the upstream, the cache ` +
    `and the client at once: their CPU seconds over the cores bound its time). Before each cold pull a scratch file the layer's size is ` +
    `written and removed (first-touch memory costs, see the core bench). Each round starts both caches empty (order alternating); "warm as ` +
    `fast as local" is read as ≥ 0.9× (the machine is shared; compare within one run).`,
    "",
  ].join("\n");
}

/** Start bench/mirror_floor.ts on a free port, fetching from `upstream`, its files in `dir`. */
async function startFloor(dir: string, upstream: string): Promise<BenchServer> {
  await Deno.mkdir(dir, { recursive: true });
  const port = freePort();
  const script = new URL("./mirror_floor.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-read", "--allow-write", script, `${port}`, upstream, dir],
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch {
      // Exited already.
    }
    await child.status;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  for (let i = 0; i < 200; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return { name: "floor", url: `http://127.0.0.1:${port}`, pid: child.pid, dataDir: dir, stop };
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  await stop();
  throw new Error("the floor server did not start");
}

/** Write and remove a scratch file of `size` bytes, so page-cache memory is warm for both. */
async function warmMemory(path: string, size: number): Promise<void> {
  const piece = new Uint8Array(1 << 20);
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    for (let written = 0; written < size; written += piece.length) {
      let done = 0;
      while (done < piece.length) done += await file.write(piece.subarray(done));
    }
  } finally {
    file.close();
  }
  await Deno.remove(path);
}

/** A generated layer on disk. */
interface Layer {
  path: string;
  digest: string;
  size: number;
  configBytes: Uint8Array<ArrayBuffer>;
}

/** Write `size` pseudo-random bytes (every MiB different) to `path`. */
async function writeLayer(path: string, size: number): Promise<Layer> {
  const hash = createHash("sha256");
  const piece = new Uint8Array(1 << 20);
  crypto.getRandomValues(piece.subarray(0, 65536));
  for (let i = 65536; i < piece.length; i += 65536) piece.copyWithin(i, 0, 65536);
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    for (let written = 0, n = 0; written < size; n++) {
      const part = piece.subarray(0, Math.min(piece.length, size - written));
      new DataView(part.buffer).setUint32(0, n);
      hash.update(part);
      let done = 0;
      while (done < part.length) done += await file.write(part.subarray(done));
      written += part.length;
    }
  } finally {
    file.close();
  }
  const digest = `sha256:${hash.digest("hex")}`;
  const configBytes = new TextEncoder().encode(JSON.stringify({
    architecture: "amd64",
    os: "linux",
    rootfs: { type: "layers", diff_ids: [digest] },
  }));
  return { path, digest, size, configBytes };
}

/** Push the image (config, layer from its file, manifest) into `server`. */
async function pushImage(server: BenchServer, layer: Layer): Promise<void> {
  const configDigest = `sha256:${createHash("sha256").update(layer.configBytes).digest("hex")}`;
  const configPath = `${layer.path}.config`;
  await Deno.writeFile(configPath, layer.configBytes);
  for (const [path, digest] of [[configPath, configDigest], [layer.path, layer.digest]]) {
    const [start] = await curl([{
      url: `${server.url}/v2/${REPO}/blobs/uploads/`,
      method: "POST",
    }]);
    if (start?.status !== 202) throw new Error(`${server.name}: upload start ${start?.status}`);
    const location = new URL(start.location.trim(), server.url);
    location.searchParams.set("digest", digest!);
    const [put] = await curl([{ url: location.href, method: "PUT", upload: path! }]);
    if (put?.status !== 201) throw new Error(`${server.name}: blob push ${put?.status}`);
  }
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: configDigest,
      size: layer.configBytes.byteLength,
    },
    layers: [{
      mediaType: "application/vnd.oci.image.layer.v1.tar",
      digest: layer.digest,
      size: layer.size,
    }],
  });
  const response = await fetch(`${server.url}/v2/${REPO}/manifests/${TAG}`, {
    method: "PUT",
    body: manifest,
    headers: { "Content-Type": OCI_MANIFEST },
  });
  await response.body?.cancel();
  if (response.status !== 201) throw new Error(`${server.name}: manifest push ${response.status}`);
}

/** Pull the image: manifest by tag, then its blobs; MB/s over everything. */
async function pull(server: BenchServer, total: number): Promise<number> {
  const t0 = performance.now();
  const response = await fetch(`${server.url}/v2/${REPO}/manifests/${TAG}`, {
    headers: { Accept: OCI_MANIFEST },
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`${server.name}: manifest ${response.status}`);
  const manifest = JSON.parse(text) as { config: Blob; layers: Blob[] };
  const blobs = [manifest.config, ...manifest.layers];
  const transfers = await curl(
    blobs.map((blob) => ({ url: `${server.url}/v2/${REPO}/blobs/${blob.digest}` })),
  );
  const seconds = (performance.now() - t0) / 1000;
  let received = 0;
  transfers.forEach((transfer, i) => {
    if (transfer.status !== 200 || transfer.downloaded !== blobs[i]!.size) {
      throw new Error(
        `${server.name}: blob ${i}: ${transfer.status}, ${transfer.downloaded} bytes`,
      );
    }
    received += transfer.downloaded;
  });
  if (received + text.length < total) throw new Error(`${server.name}: short pull`);
  return (received + text.length) / seconds / 1e6;
}

interface Blob {
  digest: string;
  size: number;
}

if (import.meta.main) {
  const options: Partial<MirrorBenchOptions> = {};
  let out: string | undefined = new URL("./results/mirror.md", import.meta.url).pathname;
  for (let i = 0; i < Deno.args.length; i++) {
    const flag = Deno.args[i];
    const value = Deno.args[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === "--layer-mib") options.layerSize = Number(value) * (1 << 20);
    else if (flag === "--rounds") options.rounds = Number(value);
    else if (flag === "--tmp") options.tmpDir = value;
    else if (flag === "--out") out = value === "-" ? undefined : value;
    else {
      throw new Error(
        `unknown flag ${flag}: deno task bench:mirror [--layer-mib N] [--rounds N] [--tmp DIR] [--out FILE|-]`,
      );
    }
  }
  const report = await runMirrorBench({
    ...options,
    log: (line) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${line}`),
  });
  console.log(report);
  if (out) await Deno.writeTextFile(out, report);
}
