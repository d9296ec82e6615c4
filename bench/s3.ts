/**
 * The S3 scenarios (group `s3` of `deno task bench`, alone: `deno task bench:s3`): blob push and
 * pull of 256 MiB and 1 GiB through berth and through distribution 2.8.2 (`docker-registry`), both
 * on S3 storage in one Ceph radosgw, interleaved round by round, with the servers' peak RSS and CPU
 * time during each transfer, against the goals. A pull follows the 307 to the store, so it
 * mostly times radosgw: pulls run several times a round in mirrored order
 * (A A' B B' C C B' B A' A), a second berth over distribution's tree (C) pulls distribution's very
 * object, so that one pull row compares the two registries on the same stored bytes, and the floors
 * (A', B') read the presigned URLs the registries redirect to straight from radosgw; each 307's own
 * time is reported too.
 * `bench:s3` prints the Markdown section and writes it to `bench/results/s3.md`.
 *
 * The store comes from `BERTH_TEST_S3_ENDPOINT`/`_ACCESS_KEY`/`_SECRET_KEY`, else from a running
 * `scripts/ceph_up.sh` cluster; `bench:s3` starts one when there is none (and
 * `scripts/ceph_down.sh` stops it after).
 *
 * @module
 */
import { readCpuSeconds, readMemory, readProc } from "./servers.ts";
import { configToEnv } from "../src/config_file.ts";
import { S3Client } from "../src/storage/drivers/s3_client.ts";

const MIB = 1024 * 1024;

interface Store {
  endpoint: string;
  accessKey: string;
  secretKey: string;
  region: string;
}

interface Server {
  name: string;
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/**
 * What a pull GETs: a registry's blob URL (curl follows its 307 to the store), or a floor: the
 * presigned URL a registry redirects to, read straight from radosgw (no registry).
 */
interface Puller {
  name: string;
  /** The registry whose CPU and RSS are sampled (none for a floor). */
  server?: Server;
  url: string;
}

/** One measured transfer. */
interface Sample {
  mbps: number;
  peakRss: number;
  /** The server's CPU time (user + system) per GiB moved. */
  cpuPerGib: number;
  /** Pulls: the time until the redirect was followed, ms. */
  redirectMs?: number;
  /** Pulls: the mirrored sequence it belongs to (of its size). */
  sequence?: number;
}

/** Options of {@link runS3Bench}. */
export interface S3BenchOptions {
  /** Rounds of every scenario (order alternating). */
  rounds: number;
  /** Mirrored pull sequences per round (each pulls twice per server and floor; default 3). */
  pullRounds?: number;
  /** Blob sizes in MiB. */
  sizes: number[];
  /** Part size of both servers, MiB. */
  chunkMib: number;
  /** Where the blobs and data folders go (default: the system temp dir). */
  tmpDir?: string;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** Mirrored pull sequences per round unless told. */
const PULL_ROUNDS = 3;

/** The goals: push and pull ratios, berth's peak RSS during the 1 GiB push. */
const GOALS = { push: 1.5, pull: 1, rssMib: 150, rssSizeMib: 1024 };

/**
 * Run the S3 scenarios on the store `BERTH_TEST_S3_*` names (else a Ceph of `scripts/ceph_up.sh`
 * that is already running; `start` lets it start one and stop it after) and return the Markdown
 * section, or one saying why it was skipped.
 */
export async function runS3Bench(options: S3BenchOptions, start = false): Promise<string> {
  const log = options.log ?? (() => {});
  const pullRounds = options.pullRounds ?? PULL_ROUNDS;
  const found = await findStore(start);
  if (!found) {
    return "## S3 (Ceph radosgw): skipped\n\nNo S3 store reachable: set `BERTH_TEST_S3_ENDPOINT`, " +
      '`_ACCESS_KEY`, `_SECRET_KEY` (`set -a; eval "$(scripts/ceph_up.sh)"; set +a`) and run ' +
      "again (`--only s3`).\n";
  }
  const { store, started } = found;
  const bucket = `berth-bench-${crypto.randomUUID().slice(0, 8)}`;
  const client = new S3Client({ ...store, bucket, pathStyle: true });
  const tmp = await Deno.makeTempDir({
    prefix: "berth-bench-s3-",
    ...(options.tmpDir && { dir: options.tmpDir }),
  });
  const results = new Map<string, Sample[]>();
  const load = [await loadAverage()];
  const servers: Server[] = [];
  let redirectDigest: string | undefined;
  let redirects: Map<string, Redirects> | undefined;
  try {
    await client.createBucket();
    servers.push(await startBerth(store, bucket, options.chunkMib, tmp, "berth"));
    servers.push(await startDistribution(store, bucket, options.chunkMib, tmp));
    // berth over distribution's tree: it redirects to distribution's object of the blob.
    const cross = await startBerth(store, bucket, options.chunkMib, tmp, "distribution");
    servers.push({ ...cross, name: "berth-on-distribution" });
    const [berth, distribution, berthOnDistribution] = servers as [Server, Server, Server];
    const registries = [berth, distribution, berthOnDistribution];
    for (const mib of options.sizes) {
      const file = `${tmp}/blob-${mib}`;
      const digest = await makeBlob(file, mib);
      for (let round = 0; round < options.rounds; round++) {
        const repo = `bench/r${round}`;
        const pushers = round % 2 === 0 ? [berth, distribution] : [distribution, berth];
        for (const server of pushers) {
          log(`s3 round ${round + 1}: ${server.name}: push ${mib} MiB`);
          const push = await measure(server, () => push1(server, repo, file, digest), mib);
          add(results, `${server.name} push ${mib} MiB`, push);
        }
        // Mirrored (A A' B B' C C B' B A' A, turned each time): drift in the store's speed hits
        // all alike. The floors (A', B') read the objects berth and distribution redirect to,
        // straight from radosgw, each beside its registry's pull.
        const all: Puller[] = [];
        for (const server of registries) {
          all.push({ name: server.name, server, url: `${server.url}/v2/${repo}/blobs/${digest}` });
          if (server === berthOnDistribution) continue;
          const url = await redirectTarget(server, repo, digest);
          all.push({ name: `${server.name} floor`, url });
        }
        for (let rep = 0; rep < pullRounds; rep++) {
          const turned = (round * pullRounds + rep) % 2 === 0 ? all : [...all].reverse();
          const sequence = round * pullRounds + rep;
          for (const puller of [...turned, ...[...turned].reverse()]) {
            log(`s3 round ${round + 1}.${rep + 1}: ${puller.name}: pull ${mib} MiB`);
            const pull = await pull1(puller, mib * MIB);
            add(results, `${puller.name} pull ${mib} MiB`, { ...pull, sequence });
          }
        }
        // Once per size and server, untimed: the bytes served are the blob's.
        if (round === 0) {
          for (const server of registries) await verifyPull(server, repo, digest);
        }
      }
      await Deno.remove(file);
      redirectDigest = digest;
    }
    if (redirectDigest) {
      log(`s3: ${REDIRECTS} redirects per server, interleaved`);
      redirects = await redirectLatency(servers, "bench/r0", redirectDigest);
    }
  } finally {
    for (const s of servers) await s.stop();
    const keys: string[] = [];
    try {
      for await (const e of client.list("")) if (e.kind === "object") keys.push(e.key);
      await client.deleteMany(keys);
      await client.deleteBucket();
    } catch { /* the store went away: nothing to clean */ }
    await Deno.remove(tmp, { recursive: true });
    if (started) await new Deno.Command("bash", { args: [script("ceph_down.sh")] }).output();
  }
  load.push(await loadAverage());
  return report(results, { ...options, pullRounds }, load) + redirectReport(redirects) +
    await radosgwNote(store);
}

const usage = "deno task bench:s3 [--rounds N] [--pull-rounds N] [--sizes 256,1024] " +
  "[--chunk-mib N] [--out FILE]";

async function main(): Promise<void> {
  const options: S3BenchOptions = { rounds: 2, sizes: [256, 1024], chunkMib: 10 };
  let out: string | undefined = new URL("./results/s3.md", import.meta.url).pathname;
  for (let i = 0; i < Deno.args.length; i++) {
    const flag = Deno.args[i];
    const value = Deno.args[++i] ?? "";
    if (flag === "--rounds") options.rounds = Number(value);
    else if (flag === "--pull-rounds") options.pullRounds = Number(value);
    else if (flag === "--sizes") options.sizes = value.split(",").map(Number);
    else if (flag === "--chunk-mib") options.chunkMib = Number(value);
    else if (flag === "--out") out = value === "-" ? undefined : value;
    else {
      console.error(usage);
      Deno.exit(2);
    }
  }
  const table = await runS3Bench({ ...options, log: (line) => console.error(line) }, true);
  console.log(table);
  if (out) await Deno.writeTextFile(out, table);
}

/**
 * Whether the local radosgw (of `scripts/ceph_up.sh`, when it serves the store) runs with the
 * script's malloc settings, without which its reads swing 2-4× from one minute to the next, and
 * with `tcp_nodelay`, without which every small GET on a reused connection waits 40 ms.
 */
async function radosgwNote(store: Store): Promise<string> {
  const dir = Deno.env.get("BERTH_CEPH_DIR") ?? `${Deno.env.get("TMPDIR") ?? "/tmp"}/berth-ceph`;
  const conf = await readProc(`${dir}/ceph.conf`);
  const port = new URL(store.endpoint).port;
  if (!conf?.includes(`endpoint=127.0.0.1:${port}`)) return "";
  const pid = (await readProc(`${dir}/run/rgw.a.pid`))?.trim();
  const environ = pid ? await readProc(`/proc/${pid}/environ`) : undefined;
  if (environ === undefined) return "";
  const malloc = environ.includes("MALLOC_MMAP_THRESHOLD_=")
    ? "\nradosgw runs with `scripts/ceph_up.sh`'s malloc settings (steady reads).\n"
    : "\n**radosgw was started without `scripts/ceph_up.sh`'s malloc settings**: its reads swing " +
      "2-4× between minutes and the pull rows measure that; restart it (`scripts/ceph_down.sh; " +
      "scripts/ceph_up.sh`).\n";
  const nodelay = conf.includes("tcp_nodelay=1")
    ? "radosgw runs with `tcp_nodelay=1` (no 40 ms wait for a response body).\n"
    : "**radosgw was started without `tcp_nodelay=1`**: every small GET on a reused connection " +
      "waits 40 ms for the client's delayed ACK, which slows both registries' commits; restart it " +
      "(`scripts/ceph_down.sh; scripts/ceph_up.sh`).\n";
  return malloc + nodelay;
}

async function loadAverage(): Promise<string> {
  return (await readProc("/proc/loadavg") ?? "").split(" ").slice(0, 3).join(" ");
}

function add(results: Map<string, Sample[]>, key: string, sample: Sample): void {
  results.set(key, [...(results.get(key) ?? []), sample]);
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function report(results: Map<string, Sample[]>, options: S3BenchOptions, load: string[]): string {
  const pullRounds = options.pullRounds ?? PULL_ROUNDS;
  const pulls = options.rounds * pullRounds;
  const rss = (xs: Sample[]) => Math.max(...xs.map((s) => s.peakRss)) / MIB;
  const cpu = (xs: Sample[]) => median(xs.map((s) => s.cpuPerGib)).toFixed(2);
  const lines = [
    `## S3 (Ceph radosgw): berth vs distribution 2.8.2`,
    "",
    `${options.rounds} rounds; pushes in alternating order; pulls ${pullRounds} times a round in ` +
    `mirrored order (A A' B B' C C B' B A' A, turned each time: ${2 * pulls} pulls per server ` +
    `and size), A' and B' the floors below; medians (min–max); part size ` +
    `${options.chunkMib} MiB for both; a pull follows the redirect to the presigned URL (both servers' default; MB/s from ` +
    `curl's own time; every pull's size is checked, and the first round's digest, untimed). ` +
    `A pull ratio (and a share of the floor) is the median over the sequences of the two ` +
    `servers' speeds within one sequence, so the store's drift between sequences does not count. ` +
    `"same object": a second berth over distribution's tree (rootdirectory) pulls distribution's ` +
    `stored blob, the object distribution's own pulls read. CPU: the server process's user + ` +
    `system seconds per GiB moved (median; a redirect's share is milliseconds). Peak RSS of the ` +
    `server sampled during the transfer. Load average before: ${load[0]}, after: ${load[1]}.`,
    "",
    "| scenario | berth MB/s | distribution MB/s | ratio | target | met | berth CPU s/GiB | distribution CPU s/GiB | berth peak RSS MiB | distribution peak RSS MiB |",
    "| --- | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: |",
  ];
  const row = (label: string, goal: number, b: Sample[], d: Sample[]) => {
    const ratio = pairedRatio(b, d) ?? median(b.map((s) => s.mbps)) / median(d.map((s) => s.mbps));
    lines.push(
      `| ${label} | ${cell(b)} | ${cell(d)} | ${ratio.toFixed(2)}× | ≥ ${goal}× | ` +
        `${ratio >= goal ? "yes" : "NO"} | ${cpu(b)} | ${cpu(d)} | ${rss(b).toFixed(0)} | ` +
        `${rss(d).toFixed(0)} |`,
    );
  };
  const redirects: string[] = [];
  const floors: string[] = [];
  for (const mib of options.sizes) {
    const get = (name: string, op: string) => results.get(`${name} ${op} ${mib} MiB`) ?? [];
    row(`push ${mib} MiB`, GOALS.push, get("berth", "push"), get("distribution", "push"));
    row(`pull ${mib} MiB`, GOALS.pull, get("berth", "pull"), get("distribution", "pull"));
    row(
      `pull ${mib} MiB, same object`,
      GOALS.pull,
      get("berth-on-distribution", "pull"),
      get("distribution", "pull"),
    );
    const ms = (name: string) => {
      const v = get(name, "pull").map((s) => s.redirectMs ?? 0);
      return `${median(v).toFixed(1)} (${Math.min(...v).toFixed(1)}–${Math.max(...v).toFixed(1)})`;
    };
    redirects.push(
      `| ${mib} MiB | ${ms("berth")} | ${ms("berth-on-distribution")} | ${ms("distribution")} |`,
    );
    const speed = (name: string) => median(get(name, "pull").map((s) => s.mbps));
    const share = (name: string, floor: string) => {
      const ratio = pairedRatio(get(name, "pull"), get(floor, "pull")) ??
        speed(name) / speed(floor);
      return `${(100 * ratio).toFixed(0)}%`;
    };
    floors.push(
      `| ${mib} MiB | ${cell(get("berth floor", "pull"))} | ${share("berth", "berth floor")} | ` +
        `${cell(get("distribution floor", "pull"))} | ` +
        `${share("distribution", "distribution floor")} | ` +
        `${share("berth-on-distribution", "distribution floor")} |`,
    );
  }
  lines.push(
    "",
    "The redirect alone (curl's `time_redirect`: connect, request, 307), ms, medians (min–max):",
    "",
    "| blob | berth | berth on distribution's tree | distribution |",
    "| --- | ---: | ---: | ---: |",
    ...redirects,
    "",
    "The floor: the presigned URL each registry redirects to (taken once a round), read by curl " +
      "straight from radosgw in the same sequences (no registry), MB/s, medians (min–max), and " +
      "each registry's pull as a share of the floor of the object it redirects to:",
    "",
    "| blob | floor, berth's object | berth | floor, distribution's object | distribution | berth on distribution's tree |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
    ...floors,
  );
  const big = results.get(`berth push ${GOALS.rssSizeMib} MiB`);
  if (big) {
    const peak = rss(big);
    lines.push(
      "",
      `berth peak RSS during the ${GOALS.rssSizeMib} MiB push: ${peak.toFixed(0)} MiB (target ≤ ` +
        `${GOALS.rssMib} MiB: ${peak <= GOALS.rssMib ? "met" : "NOT met"}).`,
    );
  }
  return lines.join("\n") + "\n";
}

/**
 * Pulls: the median over the mirrored sequences of one server's speed against the other's in that
 * sequence (each pulls twice in it, at mirrored places, so drift within a sequence cancels and
 * drift between sequences does not count); `undefined` for samples without sequences (pushes).
 */
function pairedRatio(a: Sample[], b: Sample[]): number | undefined {
  const seconds = (samples: Sample[]) => {
    const bySequence = new Map<number, number>();
    for (const { sequence, mbps } of samples) {
      if (sequence === undefined) return undefined;
      bySequence.set(sequence, (bySequence.get(sequence) ?? 0) + 1 / mbps);
    }
    return bySequence;
  };
  const [ta, tb] = [seconds(a), seconds(b)];
  if (!ta || !tb || ta.size === 0) return undefined;
  const ratios = [...ta].flatMap(([seq, t]) => tb.has(seq) ? [tb.get(seq)! / t] : []);
  return ratios.length > 0 ? median(ratios) : undefined;
}

function cell(samples: Sample[]): string {
  const v = samples.map((s) => s.mbps);
  return `${median(v).toFixed(0)} (${Math.min(...v).toFixed(0)}–${Math.max(...v).toFixed(0)})`;
}

/** Time `fn` and sample the server's RSS every 25 ms meanwhile (no server: time only). */
async function measure(
  server: Server | undefined,
  fn: () => Promise<void>,
  mib: number,
): Promise<Sample> {
  const rss = async () => server ? (await readMemory(server.pid))?.rss ?? 0 : 0;
  const cpuSeconds = async () => server ? await readCpuSeconds(server.pid) : 0;
  let peakRss = await rss();
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peakRss = Math.max(peakRss, await rss());
      await new Promise((r) => setTimeout(r, 25));
    }
  })();
  const cpu0 = await cpuSeconds();
  const t0 = performance.now();
  try {
    await fn();
  } finally {
    sampling = false;
    await sampler;
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpuPerGib = (await cpuSeconds() - cpu0) / (mib / 1024);
  return { mbps: (mib * MIB) / 1e6 / seconds, peakRss, cpuPerGib };
}

async function curl(args: string[]): Promise<string> {
  const { success, stdout, stderr } = await new Deno.Command("curl", {
    args: ["-sS", "--fail-with-body", ...args],
  }).output();
  const text = new TextDecoder().decode(stdout);
  if (!success) {
    throw new Error(`curl ${args.join(" ")}: ${text} ${new TextDecoder().decode(stderr)}`);
  }
  return text;
}

/** Redirects timed per server by {@link redirectLatency}. */
const REDIRECTS = 100;

/** The 307s of one server: curl's time per request (ms) and the server's CPU ms per request. */
interface Redirects {
  ms: number[];
  cpuMs: number;
}

/**
 * A blob GET not followed (the 307 alone), {@link REDIRECTS} times per server, the servers taking
 * turns: each a fresh `curl` (connect, request, answer), as a client pulling a layer.
 */
async function redirectLatency(
  servers: Server[],
  repo: string,
  digest: string,
): Promise<Map<string, Redirects>> {
  const out = new Map<string, Redirects>(servers.map((s) => [s.name, { ms: [], cpuMs: 0 }]));
  for (let i = 0; i < REDIRECTS; i++) {
    for (const server of i % 2 === 0 ? servers : [...servers].reverse()) {
      const entry = out.get(server.name)!;
      const cpu0 = await readCpuSeconds(server.pid);
      const got = await curl([
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{time_total}",
        `${server.url}/v2/${repo}/blobs/${digest}`,
      ]);
      entry.cpuMs += (await readCpuSeconds(server.pid) - cpu0) * 1000 / REDIRECTS;
      const [code, seconds] = got.split(" ");
      if (code !== "307") throw new Error(`${server.name}: blob GET answered ${code}, not 307`);
      entry.ms.push(Number(seconds) * 1000);
    }
  }
  return out;
}

function redirectReport(redirects: Map<string, Redirects> | undefined): string {
  if (!redirects) return "";
  const lines = [
    "",
    `The 307 alone, ${REDIRECTS} blob GETs per server not followed, servers taking turns (a fresh ` +
    "curl each: connect, request, answer), ms, median (10th–90th percentile), and the server's " +
    "CPU ms per 307:",
    "",
    "| server | 307 ms | CPU ms per 307 |",
    "| --- | ---: | ---: |",
  ];
  for (const [name, { ms, cpuMs }] of redirects) {
    const sorted = [...ms].sort((a, b) => a - b);
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!;
    lines.push(
      `| ${name} | ${median(ms).toFixed(1)} (${at(0.1).toFixed(1)}–${at(0.9).toFixed(1)}) | ` +
        `${cpuMs.toFixed(2)} |`,
    );
  }
  return lines.join("\n") + "\n";
}

/** POST, one PATCH with the whole file (curl -T streams it), PUT ?digest=. */
async function push1(server: Server, repo: string, file: string, digest: string): Promise<void> {
  const header = (text: string, name: string) =>
    new RegExp(`^${name}:\\s*(\\S+)`, "im").exec(text)?.[1] ?? "";
  const started = await curl(["-i", "-X", "POST", `${server.url}/v2/${repo}/blobs/uploads/`]);
  const location = absolute(server, header(started, "location"));
  const patched = await curl([
    "-i",
    "-X",
    "PATCH",
    "-H",
    "Content-Type: application/octet-stream",
    "-T",
    file,
    location,
  ]);
  const next = absolute(server, header(patched, "location"));
  const sep = next.includes("?") ? "&" : "?";
  await curl(["-X", "PUT", "-o", "/dev/null", `${next}${sep}digest=${digest}`]);
}

/**
 * GET the blob, following a redirect, to /dev/null; it must have the blob's size. The speed is
 * curl's own time (its start is not counted), with the redirect's time.
 */
async function pull1(puller: Puller, size: number): Promise<Sample> {
  let got = "";
  const sample = await measure(puller.server, async () => {
    got = await curl([
      "-L",
      "-o",
      "/dev/null",
      "-w",
      "%{size_download} %{time_redirect} %{time_total}",
      puller.url,
    ]);
  }, size / MIB);
  const [bytes, redirect, total] = got.split(" ").map(Number) as [number, number, number];
  if (bytes !== size) throw new Error(`${puller.name}: pulled ${bytes} bytes, not ${size}`);
  return { ...sample, mbps: size / 1e6 / total, redirectMs: redirect * 1000 };
}

/** The presigned URL a registry's blob GET redirects to (not followed). */
async function redirectTarget(server: Server, repo: string, digest: string): Promise<string> {
  const url = `${server.url}/v2/${repo}/blobs/${digest}`;
  const got = await curl(["-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", url]);
  const [code, location] = got.split(" ");
  if (code !== "307" || !location) throw new Error(`${server.name}: blob GET answered ${code}`);
  return location;
}

/** GET the blob, following the redirect, and check its digest. */
async function verifyPull(server: Server, repo: string, digest: string): Promise<void> {
  const url = `${server.url}/v2/${repo}/blobs/${digest}`;
  const { success, stdout } = await new Deno.Command("bash", {
    args: ["-c", 'curl -sSfL "$1" | openssl dgst -sha256 -r', "verify", url],
  }).output();
  const hex = new TextDecoder().decode(stdout).split(" ")[0];
  if (!success || `sha256:${hex}` !== digest) {
    throw new Error(`${server.name}: the blob pulled has digest sha256:${hex}, not ${digest}`);
  }
}

function absolute(server: Server, location: string): string {
  return location.startsWith("http") ? location : `${server.url}${location}`;
}

async function makeBlob(file: string, mib: number): Promise<string> {
  const f = await Deno.open(file, { write: true, create: true, truncate: true });
  const piece = new Uint8Array(MIB);
  for (let i = 0; i < mib; i++) {
    crypto.getRandomValues(piece.subarray(0, 65536));
    piece.set(piece.subarray(0, 65536), 65536 * (i % 15 + 1));
    await f.write(piece);
  }
  f.close();
  const { stdout } = await new Deno.Command("openssl", { args: ["dgst", "-sha256", "-r", file] })
    .output();
  return `sha256:${new TextDecoder().decode(stdout).split(" ")[0]}`;
}

function script(name: string): string {
  return new URL(`../scripts/${name}`, import.meta.url).pathname;
}

/**
 * The store `BERTH_TEST_S3_*` names; else the one `scripts/ceph_up.sh` runs (started by it when
 * `start`, else only when already running); `undefined` when there is none.
 */
async function findStore(start: boolean): Promise<{ store: Store; started: boolean } | undefined> {
  const get = (k: string) => Deno.env.get(`BERTH_TEST_S3_${k}`);
  let started = false;
  if (!get("ENDPOINT")) {
    const dir = Deno.env.get("BERTH_CEPH_DIR") ??
      `${Deno.env.get("TMPDIR") ?? "/tmp"}/berth-ceph`;
    const running = await Deno.stat(`${dir}/run/rgw.a.pid`).then(() => true, () => false);
    if (!running && !start) return undefined;
    const { success, stdout } = await new Deno.Command("bash", { args: [script("ceph_up.sh")] })
      .output();
    if (!success) {
      if (!start) return undefined;
      throw new Error("scripts/ceph_up.sh failed");
    }
    for (const line of new TextDecoder().decode(stdout).split("\n")) {
      const [k, v] = line.split("=");
      if (k && v) Deno.env.set(k, v);
    }
    started = !running;
  }
  const store = {
    endpoint: get("ENDPOINT")!,
    accessKey: get("ACCESS_KEY")!,
    secretKey: get("SECRET_KEY")!,
    region: get("REGION") ?? "us-east-1",
  };
  const probe = new S3Client({
    ...store,
    bucket: "berth-bench-probe",
    pathStyle: true,
    retries: 0,
  });
  try {
    await probe.bucketExists();
  } catch {
    return undefined;
  }
  return { store, started };
}

async function waitUp(url: string, process: Deno.ChildProcess): Promise<void> {
  for (let i = 0; i < 400; i++) {
    try {
      const r = await fetch(`${url}/v2/`);
      await r.body?.cancel();
      if (r.status === 200) return;
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 50));
  }
  process.kill("SIGKILL");
  throw new Error(`${url} did not start`);
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function startBerth(
  store: Store,
  bucket: string,
  chunkMib: number,
  tmp: string,
  rootDirectory: string,
) {
  const port = freePort();
  const env = configToEnv({
    storage: "s3",
    s3: {
      accessKey: store.accessKey,
      secretKey: store.secretKey,
      region: store.region,
      regionEndpoint: store.endpoint,
      bucket,
      rootDirectory,
      chunkSize: chunkMib * MIB,
      forcePathStyle: true,
      multipartCopyThresholdSize: 5 * 1024 * MIB,
      multipartCopyChunkSize: 32 * MIB,
      redirect: true,
    },
    accessLog: false,
  })!;
  const main = new URL("../main.ts", import.meta.url).pathname;
  const process = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      main,
      "serve",
      "--addr",
      `127.0.0.1:${port}`,
      "--data",
      `${tmp}/berth-data-${rootDirectory}`,
    ],
    env,
    stdout: "null",
    stderr: "null",
  }).spawn();
  const url = `http://127.0.0.1:${port}`;
  await waitUp(url, process);
  return {
    name: "berth",
    url,
    pid: process.pid,
    stop: async () => {
      process.kill("SIGTERM");
      await process.status;
    },
  };
}

async function startDistribution(store: Store, bucket: string, chunkMib: number, tmp: string) {
  const port = freePort();
  const config = `${tmp}/distribution.yml`;
  await Deno.writeTextFile(
    config,
    [
      "version: 0.1",
      "log: {level: error, accesslog: {disabled: true}}",
      "storage:",
      "  s3:",
      `    accesskey: ${store.accessKey}`,
      `    secretkey: ${store.secretKey}`,
      `    region: ${store.region}`,
      `    regionendpoint: ${store.endpoint}`,
      `    bucket: ${bucket}`,
      "    rootdirectory: /distribution",
      "    secure: false",
      "    v4auth: true",
      `    chunksize: ${chunkMib * MIB}`,
      `    multipartcopythresholdsize: ${5 * 1024 * MIB}`,
      "  cache: {blobdescriptor: inmemory}",
      "  maintenance: {uploadpurging: {enabled: false}}",
      "http:",
      `  addr: 127.0.0.1:${port}`,
      "",
    ].join("\n"),
  );
  // Its AWS SDK refuses to start when AWS_CA_BUNDLE is set: a clean environment.
  const process = new Deno.Command("docker-registry", {
    args: ["serve", config],
    clearEnv: true,
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", HOME: tmp },
    stdout: "null",
    stderr: "null",
  }).spawn();
  const url = `http://127.0.0.1:${port}`;
  await waitUp(url, process);
  return {
    name: "distribution",
    url,
    pid: process.pid,
    stop: async () => {
      process.kill("SIGTERM");
      await process.status;
    },
  };
}

if (import.meta.main) await main();
