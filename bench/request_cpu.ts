/**
 * Server CPU per small request, berth next to the bare `Deno.serve` (bench/bare_server.ts): each
 * server gets the same load (`ab -k -i` for HEAD, `wrk -t1` for GET, 50 connections), and the
 * user + system time its process used during the load is divided by the requests answered. On a
 * shared machine the rate swings with the load of others; CPU per request moves much less, so it
 * is the figure to compare across runs. Servers alternate, round by round.
 *
 * `deno run -A bench/request_cpu.ts [--rounds 3] [--seconds 4] [--only "GET /v2/,blob HEAD"]
 * [--base PATH/main.ts]`: `--base` adds berth from another checkout (an A/B of a change: "berth
 * base" is that checkout, "berth" this one), in the same rounds.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { load } from "./clients.ts";
import { makeImage, pushImage } from "./run.ts";
import { type BenchServer, readCpuSeconds, startBare, startBerth } from "./servers.ts";

interface Scenario {
  name: string;
  method: "GET" | "HEAD";
  path: (blob: string) => string;
}

const SCENARIOS: Scenario[] = [
  { name: "manifest HEAD by tag", method: "HEAD", path: () => "/v2/bench/m/manifests/latest" },
  { name: "manifest GET by tag", method: "GET", path: () => "/v2/bench/m/manifests/latest" },
  { name: "GET /v2/", method: "GET", path: () => "/v2/" },
  { name: "blob HEAD", method: "HEAD", path: (blob) => `/v2/bench/m/blobs/${blob}` },
];

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      rounds: { type: "string", default: "3" },
      seconds: { type: "string", default: "4" },
      only: { type: "string" },
      base: { type: "string" },
    },
  });
  const rounds = Number(values.rounds);
  const seconds = Number(values.seconds);
  const only = values.only?.split(",");
  const scenarios = SCENARIOS.filter((scenario) => !only || only.includes(scenario.name));
  const tmp = await Deno.makeTempDir({ prefix: "request_cpu_" });
  const berth = await startBerth(`${tmp}/berth`);
  const bare = await startBare(`${tmp}/bare`);
  const base = values.base
    ? await startBerth(`${tmp}/base`, {}, { main: values.base, name: "berth base" })
    : undefined;
  const servers = base ? [base, berth, bare] : [berth, bare];
  const loadBefore = (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
  const started = new Date().toISOString();
  const results = new Map<string, { rate: number[]; cpu: number[] }>();
  try {
    const image = makeImage(1, 4096);
    await pushImage(berth, "bench/m", "latest", image, 1);
    if (base) await pushImage(base, "bench/m", "latest", image, 1);
    const blob = image.layers[0]!.digest;
    await Deno.writeFile(`${bare.dataDir}/${blob.replace(":", "_")}`, image.layers[0]!.bytes);
    for (let round = 0; round < rounds; round++) {
      const order: BenchServer[] = round % 2 ? [...servers].reverse() : servers;
      for (const scenario of scenarios) {
        for (const server of order) {
          const url = `${server.url}${scenario.path(blob)}`;
          await load(scenario.method, url, 50, { requests: 2000 });
          const before = await readCpuSeconds(server.pid);
          const result = await load(scenario.method, url, 50, { seconds });
          const cpu = (await readCpuSeconds(server.pid)) - before;
          if (result.errors > 0) throw new Error(`${server.name} ${scenario.name}: errors`);
          const key = `${scenario.name}|${server.name}`;
          const entry = results.get(key) ?? { rate: [], cpu: [] };
          entry.rate.push(result.rate);
          entry.cpu.push(cpu / result.completed * 1e6);
          results.set(key, entry);
        }
      }
    }
  } finally {
    for (const server of servers) await server.stop();
    await Deno.remove(tmp, { recursive: true });
  }
  const loadAfter = (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
  console.log(
    `Run ${started} → ${new Date().toISOString()}, ${rounds} rounds of ${seconds} s, ` +
      `load average ${loadBefore} / ${loadAfter}; medians\n`,
  );
  const fmt = (n: number) => n.toFixed(n < 100 ? 1 : 0);
  const names = servers.map((server) => server.name);
  console.log(
    `| request | ${names.map((name) => `${name} req/s`).join(" | ")} | ` +
      `${names.map((name) => `${name} CPU µs/req`).join(" | ")} | berth/bare req/s |`,
  );
  console.log(`|---|${names.map(() => "---:|---:|").join("")}---:|`);
  for (const scenario of scenarios) {
    const of = (name: string) => results.get(`${scenario.name}|${name}`)!;
    const rate = (name: string) => median(of(name).rate);
    console.log(
      `| ${scenario.name} | ${names.map((name) => fmt(rate(name))).join(" | ")} | ` +
        `${names.map((name) => fmt(median(of(name).cpu))).join(" | ")} | ` +
        `${Math.round(rate("berth") / rate(bare.name) * 100)}% |`,
    );
  }
  if (base) {
    console.log("\nCPU µs per request by round (berth base; berth):");
    for (const scenario of scenarios) {
      const rounds = (name: string) => results.get(`${scenario.name}|${name}`)!.cpu.map(fmt);
      console.log(
        `- ${scenario.name}: ${rounds(base.name).join(", ")}; ${rounds("berth").join(", ")}`,
      );
    }
  }
}
