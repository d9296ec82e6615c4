/**
 * What a big blob GET costs each server, interleaved round by round: berth checkouts
 * (`berth:DIR`), distribution 2.8.2 (`distribution`), the bare `Deno.serve` (`bare`,
 * bench/bare_server.ts) and the bare `Deno.listen` GET floor in any of its variants
 * (`floor:read:MIB`, `floor:overlap:MIB`, `floor:pipe`; bench/listen_floor.ts mode `get`). The
 * blob is pushed once to each registry (the floor gets a hard link to the file); then, each round,
 * every server in turn (the order alternating and turning) serves one unmeasured GET and `--gets`
 * measured ones, each a curl to /dev/null over loopback. Reported per server: MB/s, the server
 * process's CPU (user + system from `/proc/PID/stat`) per GiB and that of its main thread (what
 * the machine's load moves far less than wall time), and its peak `VmRSS` (sampled every 20 ms);
 * medians over all measured GETs, (min–max). With `--range-mib N` each measured GET is instead 20
 * range reads of N MiB at spread offsets on one connection, as `deno task bench`'s range row (MB/s
 * over the transfers' own times).
 *
 * `deno run -A bench/get_cpu.ts [--rounds 5] [--gets 3] [--mib 1024] berth:. floor:read:1 ...`
 *
 * @module
 */
import { parseArgs } from "node:util";
import { writeTestBlob } from "./servers.ts";
import { curl } from "./clients.ts";
import {
  type BenchServer,
  readCpuSeconds,
  readProc,
  RssSampler,
  startBare,
  startBerth,
  startDistribution,
  startFloor,
} from "./servers.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  options: {
    rounds: { type: "string", default: "5" },
    gets: { type: "string", default: "3" },
    mib: { type: "string", default: "1024" },
    "range-mib": { type: "string" },
  },
  allowPositionals: true,
});
const rounds = Number(values.rounds);
const gets = Number(values.gets);
const mib = Number(values.mib);
const rangeMib = values["range-mib"] ? Number(values["range-mib"]) : undefined;
const variants = positionals.length ? positionals : ["berth:.", "floor:read:1", "distribution"];

async function start(variant: string, dataDir: string): Promise<BenchServer> {
  if (variant.startsWith("berth:")) {
    const dir = variant.slice("berth:".length);
    return await startBerth(dataDir, {}, { main: `${dir}/main.ts`, name: variant });
  }
  if (variant === "distribution") return await startDistribution(dataDir);
  if (variant === "bare") return await startBare(dataDir);
  if (variant.startsWith("floor:")) {
    const server = await startFloor(dataDir, ["get", variant.slice("floor:".length)]);
    return { ...server, name: variant };
  }
  throw new Error(`unknown server ${variant}`);
}

/** Put the blob on `server` (POST, then PUT with curl -T), or link it into the floor's folder. */
async function place(server: BenchServer, path: string, digest: string): Promise<void> {
  if (server.name.startsWith("floor:")) {
    await Deno.link(path, `${server.dataDir}/${digest.replace(":", "_")}`);
    return;
  }
  const post = await fetch(`${server.url}/v2/bench/get/blobs/uploads/`, { method: "POST" });
  await post.body?.cancel();
  const location = new URL(post.headers.get("Location") ?? "", server.url);
  location.searchParams.set("digest", digest);
  const [put] = await curl([{ url: location.href, method: "PUT", upload: path }]);
  if (put!.status !== 201) throw new Error(`${server.name}: PUT answered ${put!.status}`);
}

/** One GET by curl to /dev/null: status, bytes, and curl's CPU seconds (bash's `times`). */
async function timedCurl(url: string) {
  const script =
    `curl -sS --http1.1 -o /dev/null -w '%{http_code} %{size_download}\\n' "$1"; times`;
  const out = await new Deno.Command("bash", { args: ["-c", script, "-", url], stdin: "null" })
    .output();
  const [result = "", , children = ""] = new TextDecoder().decode(out.stdout).trim().split("\n");
  const [status, downloaded] = result.split(" ").map(Number);
  const seconds = [...children.matchAll(/(\d+)m([\d.]+)s/g)]
    .reduce((sum, m) => sum + Number(m[1]) * 60 + Number(m[2]), 0);
  return { status, downloaded, cpu: seconds };
}

/** Range reads of `length` bytes at `starts` on one connection: bytes, seconds, curl's CPU. */
async function timedRanges(url: string, starts: number[], length: number) {
  const args = starts.flatMap((start, i) => [
    ...(i ? ["--next"] : []),
    ...[
      "-sS",
      "--http1.1",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code} %{size_download} %{time_total}\\n",
    ],
    ...["-r", `${start}-${start + length - 1}`, url],
  ]);
  const out = await new Deno.Command("bash", {
    args: ["-c", `curl "$@"; times`, "-", ...args],
    stdin: "null",
  }).output();
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  let bytes = 0;
  let seconds = 0;
  for (const line of lines.slice(0, starts.length)) {
    const [status, size, time] = line.split(" ").map(Number);
    if (status !== 206 || size !== length) throw new Error(`range read: ${line}`);
    bytes += size;
    seconds += time!;
  }
  const cpu = [...(lines.at(-1) ?? "").matchAll(/(\d+)m([\d.]+)s/g)]
    .reduce((sum, m) => sum + Number(m[1]) * 60 + Number(m[2]), 0);
  return { bytes, seconds, cpu };
}

const median = (list: number[]) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)]!;
const spread = (list: number[], digits: number) =>
  `${median(list).toFixed(digits)} (${Math.min(...list).toFixed(digits)}–${
    Math.max(...list).toFixed(digits)
  })`;

const work = await Deno.makeTempDir({ prefix: "get_cpu_" });
const servers: BenchServer[] = [];
try {
  const blob = `${work}/blob`;
  const digest = await writeTestBlob(blob, mib);
  const size = mib << 20;
  for (const [i, variant] of variants.entries()) {
    const dataDir = `${work}/data-${i}`;
    await Deno.mkdir(dataDir, { recursive: true });
    const server = await start(variant, dataDir);
    servers.push(server);
    await place(server, blob, digest);
  }
  const results = new Map(
    servers.map((s) => [s, {
      mbs: [] as number[],
      cpu: [] as number[],
      main: [] as number[],
      client: [] as number[],
    }]),
  );
  const peaks = new Map(servers.map((s) => [s, [] as number[]]));
  console.error(`load average before: ${(await readProc("/proc/loadavg"))?.trim()}`);
  for (let round = 0; round < rounds; round++) {
    const turned = round % 2 === 0 ? servers : [...servers].reverse();
    const shift = Math.floor(round / 2) % servers.length;
    for (const server of [...turned.slice(shift), ...turned.slice(0, shift)]) {
      const url = `${server.url}/v2/bench/get/blobs/${digest}`;
      if (round === 0) await curl([{ url }]);
      const sampler = new RssSampler(server.pid, 20);
      const figures = results.get(server)!;
      for (let i = 0; i < gets; i++) {
        const cpu0 = await readCpuSeconds(server.pid);
        const main0 = await readCpuSeconds(server.pid, server.pid);
        let bytes = size;
        let seconds: number;
        let clientCpu: number;
        if (rangeMib) {
          const length = rangeMib << 20;
          const slots = Math.max(1, Math.floor(size / length));
          const starts = Array.from({ length: 20 }, (_, k) => ((k * 7 + i * 3) % slots) * length);
          ({ bytes, seconds, cpu: clientCpu } = await timedRanges(url, starts, length));
        } else {
          const t0 = performance.now();
          const get = await timedCurl(url);
          seconds = (performance.now() - t0) / 1000;
          if (get.status !== 200 || get.downloaded !== size) {
            throw new Error(`${server.name}: ${get.status}, ${get.downloaded} bytes`);
          }
          clientCpu = get.cpu;
        }
        const gib = bytes / (1 << 30);
        figures.client.push(clientCpu / gib);
        figures.mbs.push(bytes / 1e6 / seconds);
        figures.cpu.push(((await readCpuSeconds(server.pid)) - cpu0) / gib);
        figures.main.push(((await readCpuSeconds(server.pid, server.pid)) - main0) / gib);
      }
      peaks.get(server)!.push((await sampler.stop()) / (1 << 20));
      const last = figures.mbs.slice(-gets).map((v) => v.toFixed(0)).join(", ");
      console.error(`round ${round + 1}: ${server.name}: ${last} MB/s`);
    }
  }
  console.error(`load average after: ${(await readProc("/proc/loadavg"))?.trim()}`);
  console.log(
    "| server | MB/s | CPU s/GiB | main thread CPU s/GiB | curl CPU s/GiB | peak VmRSS, MiB |\n" +
      "|---|---:|---:|---:|---:|---:|",
  );
  for (const server of servers) {
    const f = results.get(server)!;
    console.log(
      `| ${server.name} | ${spread(f.mbs, 0)} | ${spread(f.cpu, 2)} | ${spread(f.main, 2)} | ${
        spread(f.client, 2)
      } | ${spread(peaks.get(server)!, 1)} |`,
    );
  }
} finally {
  for (const server of servers) await server.stop().catch(() => {});
  await Deno.remove(work, { recursive: true });
}
