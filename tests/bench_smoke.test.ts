/**
 * A smoke run of the benchmark harness on tiny sizes, so `deno task bench` cannot rot. It checks
 * that every scenario ran against both registries and the report is written; never speed.
 */
import assert from "node:assert/strict";
import { parseArgs } from "../bench/main.ts";
import { formatReport, type Metric, METRICS, targetMet } from "../bench/report.ts";
import { DEFAULT_OPTIONS, runBench } from "../bench/run.ts";
import { skipWithout } from "./helpers/tools.ts";

Deno.test({
  name: "bench: a tiny run measures every scenario on berth and distribution",
  ignore: skipWithout("docker-registry", "curl", "ab"),
  async fn() {
    const run = await runBench({
      ...DEFAULT_OPTIONS,
      blobSize: 256 * 1024 + 17,
      chunks: 3,
      patchSize: 64 * 1024 + 5,
      rounds: 2,
      rangeSize: 4096,
      rangeReads: 3,
      connections: 4,
      load: { requests: 40 },
      tags: 3,
      repositories: 4,
      catalogPage: 2,
      layers: 3,
      layerSize: 100,
      imagePushes: 1,
      imageConcurrency: 2,
      starts: 1,
      bare: true,
    });
    assert.deepEqual(run.servers, ["berth", "distribution", "bare Deno.serve"]);
    const registryOnly = new Set<string>([
      METRICS.tagsList.key,
      METRICS.catalog.key,
      METRICS.imagePush.key,
    ]);
    const optional = new Set<string>([METRICS.tagsList.key, METRICS.catalog.key]);
    for (const metric of Object.values(METRICS) as Metric[]) {
      for (const server of run.servers) {
        const values = run.results.get(metric.key)?.get(server);
        if (server.startsWith("bare") && registryOnly.has(metric.key)) {
          assert.equal(values, undefined);
          continue;
        }
        if (values === "n/a" && server === "berth" && optional.has(metric.key)) continue;
        if (server === "distribution" && metric.key.endsWith(".main-cpu")) {
          assert.equal(values, undefined, "a Go server's main thread is not measured");
          continue;
        }
        assert.ok(Array.isArray(values), `${metric.key} of ${server}: ${values}`);
        const expected = metric.key.startsWith("rss.hwm") || metric.key.startsWith("rss.idle") ||
            metric.key.startsWith("start.")
          ? 1
          : 2;
        assert.equal(values.length, expected, `${metric.key} of ${server} has one value a round`);
        // CPU time comes in 10 ms ticks: a tiny push may use none.
        const least = metric.unit === "CPU s/GiB" ? 0 : Number.MIN_VALUE;
        for (const v of values) assert.ok(v >= least && Number.isFinite(v), `${metric.key}: ${v}`);
      }
    }
    // The push floor measured every push row, once a round, and has its table.
    assert.equal(run.floor, "Deno.listen floor");
    for (const metric of [METRICS.pushMonolithic, METRICS.pushChunked, METRICS.patchChunkedBig]) {
      const values = run.results.get(metric.key)?.get(run.floor);
      assert.ok(Array.isArray(values) && values.length === 2, `${metric.key} of the floor`);
      for (const v of values) assert.ok(v > 0 && Number.isFinite(v), `${metric.key}: ${v}`);
    }
    assert.equal(run.results.get(METRICS.blobGet.key)?.get(run.floor), undefined);
    // The GET floors measured the blob GET and range rows, once a round, and have their table.
    assert.deepEqual(run.getFloors, ["GET floor, 2 × 1 MiB", "GET floor, 1 × 4 MiB"]);
    for (const floor of run.getFloors!) {
      for (const metric of [METRICS.blobGet, METRICS.rangeGet]) {
        const values = run.results.get(metric.key)?.get(floor);
        assert.ok(Array.isArray(values) && values.length === 2, `${metric.key} of ${floor}`);
        for (const v of values) assert.ok(v > 0 && Number.isFinite(v), `${metric.key}: ${v}`);
      }
      assert.equal(run.results.get(METRICS.pushMonolithic.key)?.get(floor), undefined);
    }
    const report = formatReport(run);
    assert.ok(
      report.includes(
        "| metric | berth | GET floor, 2 × 1 MiB | GET floor, 1 × 4 MiB | distribution | " +
          "berth/best floor |",
      ),
    );
    assert.ok(
      report.includes("| metric | berth | Deno.listen floor | distribution | berth/floor |"),
    );
    for (const metric of Object.values(METRICS) as Metric[]) {
      assert.ok(report.includes(`| ${metric.label}, ${metric.unit} |`), metric.label);
    }
    assert.ok(report.includes("| bare Deno.serve |"));
    const main = report.slice(0, report.indexOf("## Pushes against the floor"));
    for (const line of main.split("\n").filter((l) => l.startsWith("| blob push"))) {
      assert.equal(line.split("|").length, 9, `one cell per server: ${line}`);
    }
    assert.equal(typeof targetMet(run, METRICS.manifestGet), "boolean");
  },
});

Deno.test("bench: flags set sizes, and unknown flags are refused", () => {
  const { options, out } = parseArgs(["--blob-mib", "2", "--requests", "9", "--out", "-"]);
  assert.equal(options.blobSize, 2 << 20);
  assert.deepEqual(options.load, { requests: 9 });
  assert.equal(out, undefined);
  assert.equal(parseArgs([]).out?.endsWith("bench/results/latest.md"), true);
  assert.throws(() => parseArgs(["--nope"]), /unknown flag --nope/);
  assert.throws(() => parseArgs(["--rounds", "0"]), /positive integer/);
});

Deno.test("bench: a failed measurement prints as failed and the rest of the report stays", () => {
  const results = new Map([
    [METRICS.manifestHead.key, new Map([["berth", [NaN, NaN]], ["distribution", [1000, 1200]]])],
    [METRICS.tagsList.key, new Map([["berth", [20_000, NaN]], ["distribution", [1000, 1000]]])],
  ]);
  const run = {
    options: DEFAULT_OPTIONS,
    results,
    servers: ["berth", "distribution"],
    tools: new Set(["ab"]),
    loadavg: ["1 1 1", "1 1 1"] as [string, string],
    time: [new Date(0), new Date(1000)] as [Date, Date],
    runtime: "2.8.2",
    failures: ["manifest HEAD by tag, berth, round 1: ab exited 22"],
  };
  const report = formatReport(run);
  const row = (label: string) => report.split("\n").find((l) => l.startsWith(`| ${label},`));
  assert.match(
    row(METRICS.manifestHead.label) ?? "",
    /^\| [^|]+ \| failed \| 1,100 \(1,000–1,200\) \| n\/a \|/,
  );
  assert.match(
    row(METRICS.tagsList.label) ?? "",
    /\| 20,000 \(1 failed\) \| 1,000 \(1,000–1,000\) \| 20\.0× \|/,
  );
  assert.match(report, /- manifest HEAD by tag, berth, round 1: ab exited 22/);
  assert.equal(targetMet(run, METRICS.manifestHead), undefined);
});
