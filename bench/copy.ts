/**
 * `deno task bench:copy`: registry → registry copies, `berth copy` against `skopeo copy` in the
 * same run, both between two Debian `docker-registry` (distribution 2.8.2) processes so the client
 * is the only difference: one image with a single big layer (1 GiB by default) and one with many
 * small layers (50 × 2 MiB). Each copy goes to a fresh destination registry (nothing to skip or
 * mount); the client's CPU time and peak RSS come from the kernel (GNU time). Prints a Markdown
 * table and writes it to `bench/results/copy.md`.
 *
 * @module
 */
import { RegistryClient } from "../src/client/registry_client.ts";
import { digestBytes, Digester } from "../src/oci/digest.ts";
import {
  type BenchServer,
  buildBundle,
  readCpuSeconds,
  RssSampler,
  startDistribution,
  warmMemory,
} from "./servers.ts";

/** Options of the copy benchmark. */
export interface CopyBenchOptions {
  /** Size of the single-layer image's layer, MiB. */
  bigMib: number;
  /** Layers of the many-layer image. */
  layers: number;
  /** Size of each of those layers, MiB. */
  layerMib: number;
  /** Copies per client and image (medians reported). */
  rounds: number;
  /** berth's parallel blobs. */
  jobs: number;
  /** Where data directories go (default: the system temp dir). */
  tmp: string | undefined;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
}

/** The defaults of `deno task bench:copy`. */
export const COPY_DEFAULTS: CopyBenchOptions = {
  bigMib: 1024,
  layers: 50,
  layerMib: 2,
  rounds: 2,
  jobs: 6,
  tmp: undefined,
};

const USAGE =
  `deno task bench:copy [--big-mib N] [--layers N] [--layer-mib N] [--rounds N] [--jobs N]
                      [--tmp DIR] [--out FILE|-]
  --big-mib N   size of the single-layer image's layer (default 1024)
  --layers N    layers of the many-layer image (default 50), each --layer-mib (default 2)
  --rounds N    copies per client and image (default 2; medians reported)
  --jobs N      berth's parallel blobs (default 6, skopeo's own default parallelism)`;

function parse(args: string[]): { options: CopyBenchOptions; out: string | undefined } {
  const options: CopyBenchOptions = { ...COPY_DEFAULTS };
  let out: string | undefined = new URL("./results/copy.md", import.meta.url).pathname;
  for (let i = 0; i < args.length; i++) {
    const flag = args[i]!;
    const value = args[++i];
    if (value === undefined) throw new Error(`${flag} needs a value\n${USAGE}`);
    const int = () => {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} needs a positive integer`);
      return n;
    };
    if (flag === "--big-mib") options.bigMib = int();
    else if (flag === "--layers") options.layers = int();
    else if (flag === "--layer-mib") options.layerMib = int();
    else if (flag === "--rounds") options.rounds = int();
    else if (flag === "--jobs") options.jobs = int();
    else if (flag === "--tmp") options.tmp = value;
    else if (flag === "--out") out = value === "-" ? undefined : value;
    else throw new Error(`unknown flag ${flag}\n${USAGE}`);
  }
  return { options, out };
}

/** Write `size` pseudo-random bytes to `path`; returns its digest. */
async function writeLayer(path: string, size: number, seed: number): Promise<string> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  const digester = new Digester();
  const chunk = new Uint8Array(1 << 20);
  crypto.getRandomValues(chunk.subarray(0, 65536));
  for (let i = 65536; i < chunk.length; i += 65536) chunk.copyWithin(i, 0, 65536);
  try {
    for (let written = 0, n = 0; written < size; n++) {
      const piece = chunk.subarray(0, Math.min(chunk.length, size - written));
      new DataView(piece.buffer).setUint32(0, seed * 1_000_003 + n); // every MiB differs
      digester.update(piece);
      let done = 0;
      while (done < piece.length) done += await file.write(piece.subarray(done));
      written += piece.length;
    }
    // On disk before any copy is timed: left dirty, the kernel writes it back ~30 s later
    // (`vm.dirty_expire_centisecs`), in the middle of the first round's copy.
    await file.sync();
  } finally {
    file.close();
  }
  return digester.peek().value;
}

/** Push an image of the given layer files (and a config) to `registry/repository:v1`. */
async function pushImage(
  client: RegistryClient,
  repository: string,
  layers: { path: string; digest: string; size: number }[],
) {
  for (const layer of layers) {
    await client.pushBlob(repository, layer, async () => (await Deno.open(layer.path)).readable);
  }
  const config = new TextEncoder().encode(JSON.stringify({
    architecture: "amd64",
    os: "linux",
    rootfs: { type: "layers", diff_ids: layers.map((l) => l.digest) },
  }));
  const configDigest = digestBytes(config).value;
  await client.pushBlob(
    repository,
    { digest: configDigest, size: config.length },
    () => Promise.resolve(new Response(config).body!),
  );
  const manifest = new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: configDigest,
      size: config.length,
    },
    layers: layers.map((l) => ({
      mediaType: "application/vnd.oci.image.layer.v1.tar",
      digest: l.digest,
      size: l.size,
    })),
  }));
  await client.putManifest(repository, "v1", {
    bytes: manifest,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
  });
}

/**
 * The Deno client floor (`copy_floor.ts`) as a copy of the many-layer image, run once untimed
 * first (it answers a usage error) so Deno has transpiled and cached it.
 */
async function denoClientFloor() {
  const script = new URL("./copy_floor.ts", import.meta.url).pathname;
  const command = [Deno.execPath(), "run", "--allow-net", "--allow-env", script];
  const warm = await new Deno.Command(command[0]!, {
    args: command.slice(1),
    stdout: "null",
    stderr: "null",
  }).output();
  if (warm.code !== 2) throw new Error(`${script}: exit ${warm.code}, expected a usage error`);
  return {
    name: "Deno client floor",
    only: "bench/many",
    cap: "the Deno client floor reaches",
    run: (src: string, dst: string) => timed(command[0]!, [...command.slice(1), src, dst]),
  };
}

/** GNU time, which reports a child's CPU time and peak RSS from the kernel (`wait4`'s rusage). */
const GNU_TIME = "/usr/bin/time";

/**
 * Run one client copy as a child process; returns seconds, peak RSS in bytes and CPU seconds.
 * Under GNU time the kernel's own figures come back after the child ends (user + system time,
 * `ru_maxrss`), with no observer running meanwhile: sampling `/proc` every 20 ms means spawning
 * `cat` ~75 times a second without `--allow-all` (which Deno asks for to read `/proc`),
 * ~0.3 CPU s per second on the same 2 cores, and it slowed the copies it watched (1 GiB,
 * 2 rounds, load 4-6: berth 4.06 → 6.38 s, skopeo 7.94 → 10.66 s). Without GNU time, sampling.
 */
async function timed(
  command: string,
  args: string[],
): Promise<{ seconds: number; rss: number; cpu: number }> {
  if (await hasGnuTime()) return await timedByKernel(command, args);
  const start = performance.now();
  const child = new Deno.Command(command, { args, stdout: "null", stderr: "piped" }).spawn();
  const sampler = new RssSampler(child.pid, 20);
  // CPU time as last seen before the process ended (within one 20 ms sample): on a shared
  // machine it varies less than wall time.
  let cpu = 0;
  let running = true;
  const cpuLoop = (async () => {
    while (running) {
      const seen = await readCpuSeconds(child.pid);
      if (Number.isFinite(seen)) cpu = Math.max(cpu, seen);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  const output = await child.output();
  const seconds = (performance.now() - start) / 1000;
  running = false;
  await cpuLoop;
  const rss = await sampler.stop();
  if (!output.success) {
    throw new Error(
      `${command} ${args.join(" ")} failed: ${new TextDecoder().decode(output.stderr)}`,
    );
  }
  return { seconds, rss, cpu };
}

let gnuTime: Promise<boolean> | undefined;
function hasGnuTime(): Promise<boolean> {
  gnuTime ??= Deno.stat(GNU_TIME).then((info) => info.isFile, () => false);
  return gnuTime;
}

async function timedByKernel(
  command: string,
  args: string[],
): Promise<{ seconds: number; rss: number; cpu: number }> {
  const report = await Deno.makeTempFile({ prefix: "berth-bench-time-" });
  try {
    const start = performance.now();
    const output = await new Deno.Command(GNU_TIME, {
      args: ["-o", report, "-f", "%U %S %M", command, ...args],
      stdout: "null",
      stderr: "piped",
    }).output();
    const seconds = (performance.now() - start) / 1000;
    if (!output.success) {
      throw new Error(
        `${command} ${args.join(" ")} failed: ${new TextDecoder().decode(output.stderr)}`,
      );
    }
    // The last line (a failed command's status line would come before it).
    const last = (await Deno.readTextFile(report)).trim().split("\n").at(-1) ?? "";
    const [user, system, maxKib] = last.split(" ").map(Number);
    if (![user, system, maxKib].every((n) => Number.isFinite(n))) {
      throw new Error(`${GNU_TIME}: unexpected report ${JSON.stringify(last)}`);
    }
    return { seconds, rss: maxKib! * 1024, cpu: user! + system! };
  } finally {
    await Deno.remove(report).catch(() => {});
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Run the copy scenarios; returns the report section (Markdown: a table with medians, ratios and
 * the issue's goals). Servers and temporary files are always cleaned up.
 */
export async function runCopyBench(given: Partial<CopyBenchOptions> = {}): Promise<string> {
  const options = { ...COPY_DEFAULTS, ...given };
  const log = options.log ?? ((line: string) => console.error(line));
  const work = await Deno.makeTempDir({
    prefix: "berth-bench-copy-",
    ...(options.tmp && { dir: options.tmp }),
  });
  const servers: BenchServer[] = [];
  try {
    const source = await startDistribution(`${work}/source`);
    servers.push(source);
    const host = new URL(source.url).host;
    const client = new RegistryClient({ registry: source.url });
    const big = { path: `${work}/big.bin`, size: options.bigMib << 20, digest: "" };
    big.digest = await writeLayer(big.path, big.size, 1);
    await pushImage(client, "bench/big", [big]);
    const small = [];
    for (let i = 0; i < options.layers; i++) {
      const layer = { path: `${work}/l${i}.bin`, size: options.layerMib << 20, digest: "" };
      layer.digest = await writeLayer(layer.path, layer.size, 100 + i);
      small.push(layer);
    }
    await pushImage(client, "bench/many", small);
    for (const layer of small) await Deno.remove(layer.path);
    client.close();

    const bundle = await buildBundle(work); // berth as shipped
    const berth = [
      Deno.execPath(),
      "run",
      "--allow-net",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      bundle,
    ];
    const images = [
      {
        name: `single layer (${options.bigMib} MiB)`,
        repo: "bench/big",
        bytes: big.size,
        goal: 1.5,
      },
      {
        name: `${options.layers} layers × ${options.layerMib} MiB`,
        repo: "bench/many",
        bytes: options.layers * (options.layerMib << 20),
        goal: 2,
      },
    ];
    // The destination's floor for the big layer: curl PUTs the layer file (page cache) straight
    // to it, one monolithic upload; no client copying registry to registry can be faster.
    const ingestFloor = {
      name: "curl -T (destination floor)",
      only: "bench/big",
      cap: "the destination's floor caps any client",
      run: async (_src: string, dst: string) => {
        const base = `http://${dst.slice("docker://".length).split("/")[0]}`;
        const post = await fetch(`${base}/v2/bench/big/blobs/uploads/`, { method: "POST" });
        await post.body?.cancel();
        const url = new URL(post.headers.get("Location")!, base);
        url.searchParams.set("digest", big.digest);
        return await timed("curl", ["-sf", "-X", "PUT", "-T", big.path, url.href]);
      },
    };
    // The runtime's floor for the many small layers: the least a Deno client does to copy them
    // (copy_floor.ts), loaded once untimed so its transpiled code is cached as berth's bundle is.
    const clientFloor = await denoClientFloor();
    const floors = [ingestFloor, clientFloor];
    const clients = [
      {
        name: "berth copy",
        run: (src: string, dst: string) =>
          timed(berth[0]!, [
            ...berth.slice(1),
            "copy",
            "-q",
            "--jobs",
            String(options.jobs),
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            src,
            dst,
          ]),
      },
      {
        name: "skopeo copy",
        run: (src: string, dst: string) =>
          timed("skopeo", [
            "copy",
            "-q",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            src,
            dst,
          ]),
      },
    ];
    const results = new Map<
      string,
      { seconds: number[]; rss: number[]; cpu: number[]; sourceCpu: number[]; destCpu: number[] }
    >();
    let counter = 0;
    for (let round = 0; round < options.rounds; round++) {
      for (const image of images) {
        // Every client and floor of this image takes each place in turn, round by round.
        const runs = [...clients, ...floors.filter((f) => f.only === image.repo)];
        const turn = round % runs.length;
        for (const c of [...runs.slice(turn), ...runs.slice(0, turn)]) {
          // Every copy writes into page-cache memory just freed (first-touch costs, servers.ts).
          await warmMemory(`${work}/warm`, image.bytes);
          const dest = await startDistribution(`${work}/dest-${counter++}`);
          try {
            const sourceCpu = await readCpuSeconds(source.pid);
            const r = await c.run(
              `docker://${host}/${image.repo}:v1`,
              `docker://${new URL(dest.url).host}/${image.repo}:v1`,
            );
            // What the copy cost the registries (both at the client's mercy on 2 shared cores).
            const registries = {
              source: await readCpuSeconds(source.pid) - sourceCpu,
              dest: await readCpuSeconds(dest.pid),
            };
            const key = `${image.name}|${c.name}`;
            const entry = results.get(key) ??
              { seconds: [], rss: [], cpu: [], sourceCpu: [], destCpu: [] };
            entry.cpu.push(r.cpu);
            entry.sourceCpu.push(registries.source);
            entry.destCpu.push(registries.dest);
            entry.seconds.push(r.seconds);
            entry.rss.push(r.rss);
            results.set(key, entry);
            log(
              `round ${round + 1}: ${image.name}, ${c.name}: ${r.seconds.toFixed(2)} s, CPU ${
                r.cpu.toFixed(2)
              } s, RSS ${(r.rss / 2 ** 20).toFixed(0)} MiB; registries' CPU: source ${
                registries.source.toFixed(2)
              } s, destination ${registries.dest.toFixed(2)} s`,
            );
          } finally {
            await dest.stop();
            await Deno.remove(dest.dataDir, { recursive: true }).catch(() => {});
          }
        }
      }
    }
    const lines = [
      `## copy: berth copy vs skopeo copy (registry → registry, distribution 2.8.2 on both ends)`,
      "",
      `${
        new Date().toISOString()
      }, ${options.rounds} rounds, medians; berth --jobs ${options.jobs}; load ${
        Deno.loadavg().map((l) => l.toFixed(2)).join(" ")
      }`,
      "",
      "| image | client | seconds | MB/s | client CPU s | source + dest CPU s | peak RSS MiB | berth/skopeo throughput (rounds) | goal |",
      "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ];
    for (const image of images) {
      const berthRuns = results.get(`${image.name}|berth copy`)!;
      const skopeoRuns = results.get(`${image.name}|skopeo copy`)!;
      const ratio = median(skopeoRuns.seconds) / median(berthRuns.seconds);
      const perRound = berthRuns.seconds.map((b, i) => (skopeoRuns.seconds[i]! / b).toFixed(2));
      const rss = Math.max(...berthRuns.rss) / 2 ** 20;
      const met = ratio >= image.goal && rss <= 150;
      const floor = floors.find((f) => f.only === image.repo);
      const floorRuns = floor && results.get(`${image.name}|${floor.name}`);
      // skopeo's time over the floor's is the highest ratio the floor's client reaches against
      // skopeo in this run; berth's share of the floor's speed says how far berth is from it.
      const cap = floorRuns && median(skopeoRuns.seconds) / median(floorRuns.seconds);
      const share = floorRuns && median(floorRuns.seconds) / median(berthRuns.seconds);
      const verdict = met
        ? "met"
        : cap !== undefined && share !== undefined && cap < image.goal
        ? `not met: ${floor!.cap} at ${cap.toFixed(2)}× (berth ${share.toFixed(2)}× of it)`
        : "not met";
      for (const c of [...clients, ...(floorRuns ? [floor!] : [])]) {
        const entry = results.get(`${image.name}|${c.name}`)!;
        const s = median(entry.seconds);
        const berthRow = c.name === "berth copy";
        lines.push(
          `| ${image.name} | ${c.name} | ${s.toFixed(2)} | ${
            (image.bytes / 1e6 / s).toFixed(0)
          } | ${median(entry.cpu).toFixed(2)} | ${median(entry.sourceCpu).toFixed(2)} + ${
            median(entry.destCpu).toFixed(2)
          } | ${(Math.max(...entry.rss) / 2 ** 20).toFixed(0)} | ${
            berthRow ? `${ratio.toFixed(2)}× (${perRound.join(", ")})` : ""
          } | ${berthRow ? `≥ ${image.goal}×, RSS ≤ 150: ${verdict}` : ""} |`,
        );
      }
    }
    lines.push(
      "",
      "Goals (issue 12): ≥ 1.5× skopeo's throughput on the single layer, ≥ 2× on the many-layer",
      "image, berth's RSS ≤ 150 MiB. Each copy goes to a fresh destination; the clients and the",
      "image's floor take turns at going first; before each, a scratch file of the image's size is",
      "written and removed (warm page cache). curl -T: the layer file PUT straight into a fresh",
      "destination (its ingest floor; skopeo's time over the floor's is the most any client can",
      "reach against skopeo in the run). Deno client floor: bench/copy_floor.ts, the least a Deno",
      "client does to copy the image (manifest, then per blob a POST with the source's GET sent",
      "alongside and the body PUT as it arrives; the destination checks each digest, as it does",
      "for berth; no existence checks, mounts or streams).",
      "source + dest CPU: what the two registries spent on that copy (they share the machine's",
      "cores with the client, so a client's own CPU slows them when the machine is busy).",
      "",
    );
    return lines.join("\n");
  } finally {
    for (const server of servers) await server.stop();
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  const { options, out } = parse(Deno.args);
  const table = await runCopyBench(options);
  console.log(table);
  if (out) await Deno.writeTextFile(out, table);
}
