/**
 * Start and idle memory, next to the runtime's own floor: fresh processes on empty data
 * directories, started in turn (order alternating), of
 *
 * - berth as `deno task start` runs it (`deno run main.ts serve`);
 * - berth from its bundle (`deno bundle --output <tmp>/berth.js main.ts`, built here into a
 *   temporary folder: the artifact that ships, see the Dockerfile);
 * - the bare `Deno.serve` of the other rows (bench/bare_server.ts);
 * - Deno's floor: a file that only calls `Deno.serve` with a handler answering an empty 200;
 * - distribution 2.8.2.
 *
 * One unmeasured start of each first (page cache, Deno's code cache). Each: wall time until `GET
 * /v2/` first answers (polled every 5 ms), the CPU (user + system) it
 * used until then, and `VmRSS` one second after that first answer. `deno task bench --only start`
 * appends this section to the report; alone: `deno run -A bench/start.ts [--starts 6]`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  type BenchServer,
  buildBundle,
  freePort,
  readCpuSeconds,
  readMemory,
  startBare,
  startBerth,
  startDistribution,
} from "./servers.ts";

/** Options of {@link runStartBench}. */
export interface StartBenchOptions {
  /** Fresh starts of each process. */
  starts: number;
  /** Where the temporary folder goes. */
  tmpDir?: string;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** One kind of process measured. */
interface Kind {
  name: string;
  start: (dataDir: string) => Promise<BenchServer>;
}

/** What one start measured. */
interface Sample {
  wallMs: number;
  cpuMs: number;
  rssMiB: number;
}

const FLOOR_SOURCE =
  `Deno.serve({ hostname: "127.0.0.1", port: Number(Deno.args[0]), onListen() {} },
  () => new Response());
`;

const median = (values: number[]) => {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/** Run the start measurements; returns the report's markdown section. */
export async function runStartBench(options: StartBenchOptions): Promise<string> {
  const log = options.log ?? (() => {});
  const work = await Deno.makeTempDir({
    prefix: "berth-bench-start-",
    ...(options.tmpDir && { dir: options.tmpDir }),
  });
  const loadavg = () => Deno.loadavg().map((v) => v.toFixed(2)).join(" ");
  const loadBefore = loadavg();
  const started = new Date();
  try {
    log("start: building the bundle");
    const bundle = await buildBundle(work);
    const floorFile = `${work}/floor.ts`;
    await Deno.writeTextFile(floorFile, FLOOR_SOURCE);
    const kinds: Kind[] = [
      { name: "berth (`deno run main.ts`)", start: (dir) => startBerth(dir) },
      {
        name: "berth (bundle)",
        start: (dir) => startBerth(dir, {}, { main: bundle, name: "berth (bundle)" }),
      },
      { name: "bare `Deno.serve` (bench/bare_server.ts)", start: (dir) => startBare(dir) },
      { name: "Deno's floor: `Deno.serve` of an empty 200", start: () => startFloor(floorFile) },
      { name: "distribution 2.8.2", start: (dir) => startDistribution(dir) },
    ];
    const samples = new Map<string, Sample[]>(kinds.map((kind) => [kind.name, []]));
    // Round 0 is not measured: it warms the page cache and Deno's code cache (a fresh bundle's
    // first start compiles it), as every later start of an installed server finds them.
    for (let round = 0; round <= options.starts; round++) {
      const order = round % 2 === 0 ? kinds : [...kinds].reverse();
      for (const kind of order) {
        log(`start ${round}: ${kind.name}`);
        const dataDir = `${work}/data-${round}-${kinds.indexOf(kind)}`;
        await Deno.mkdir(dataDir, { recursive: true });
        const t0 = performance.now();
        const server = await kind.start(dataDir);
        const wallMs = performance.now() - t0;
        const cpuMs = (await readCpuSeconds(server.pid)) * 1000;
        await new Promise((resolve) => setTimeout(resolve, 1000));
        const rss = (await readMemory(server.pid))?.rss ?? NaN;
        await server.stop();
        if (round > 0) samples.get(kind.name)!.push({ wallMs, cpuMs, rssMiB: rss / 2 ** 20 });
      }
    }
    const loadAfter = loadavg();
    const floor = samples.get(kinds[3]!.name)!;
    const floorCpu = median(floor.map((s) => s.cpuMs));
    const floorRss = median(floor.map((s) => s.rssMiB));
    const range = (values: number[], digits: number) => {
      const fmt = (v: number) => v.toFixed(digits);
      return `${fmt(median(values))} (${fmt(Math.min(...values))}–${fmt(Math.max(...values))})`;
    };
    const lines = [
      "## Start and idle memory, next to the runtime's floor (group `start`)",
      "",
      `${started.toISOString()}, ${options.starts} fresh starts of each (order alternating), ` +
      `empty data directories; medians (min–max); load average before/after: ${loadBefore} / ` +
      `${loadAfter}; Deno ${Deno.version.deno}. Goals: start to first answer ≤ 100 ms, idle ` +
      "RSS ≤ 50 MiB: Deno's floor row is what the runtime takes before any program code.",
      "",
      "| process | start to first answer, ms | CPU to first answer, ms | over the floor, CPU ms " +
      "| VmRSS 1 s after, MiB | over the floor, MiB |",
      "|---|---:|---:|---:|---:|---:|",
    ];
    for (const kind of kinds) {
      const list = samples.get(kind.name)!;
      const deno = kind !== kinds[4];
      const cpu = median(list.map((s) => s.cpuMs));
      const rss = median(list.map((s) => s.rssMiB));
      lines.push(
        `| ${kind.name} | ${range(list.map((s) => s.wallMs), 0)} | ` +
          `${range(list.map((s) => s.cpuMs), 0)} | ${deno ? (cpu - floorCpu).toFixed(0) : "–"} | ` +
          `${range(list.map((s) => s.rssMiB), 1)} | ${deno ? (rss - floorRss).toFixed(1) : "–"} |`,
      );
    }
    lines.push(
      "",
      "CPU is read from `/proc/<pid>/stat` in 10 ms ticks; distribution is a Go binary, not a " +
        "Deno program (its row is for comparison, not a floor).",
      "",
    );
    return lines.join("\n");
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

/** Start Deno's floor (`floorFile`) as a child process. */
async function startFloor(floorFile: string): Promise<BenchServer> {
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", floorFile, String(port)],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    await child.status;
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const response = await fetch(`${url}/v2/`);
      await response.body?.cancel();
      if (response.ok) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`Deno's floor did not start on ${url}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return { name: "floor", url, pid: child.pid, dataDir: "", stop };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { starts: { type: "string", default: "6" }, tmp: { type: "string" } },
  });
  console.log(
    await runStartBench({
      starts: Number(values.starts),
      ...(values.tmp && { tmpDir: values.tmp }),
      log: (line) => console.error(line),
    }),
  );
}
