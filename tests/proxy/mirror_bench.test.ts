/** The pull-through cache bench (bench/mirror.ts) on a tiny image: it runs and reports every row. */
import assert from "node:assert/strict";
import { runMirrorBench } from "../../bench/mirror.ts";
import { skipWithout } from "../helpers/tools.ts";

Deno.test({
  name: "bench(mirror): a tiny run pulls through berth and distribution and reports each ratio",
  ignore: skipWithout("docker-registry", "curl"),
  async fn() {
    const report = await runMirrorBench({ layerSize: 300_000, rounds: 1 });
    for (const row of ["berth cache, cold", "distribution cache, cold", "berth cache, warm"]) {
      const line = report.split("\n").find((l) => l.startsWith(`| ${row} |`));
      assert.ok(line, `${row} in\n${report}`);
      const ratio = Number(/\| ([0-9.]+)× \|/.exec(line)?.[1]);
      assert.ok(Number.isFinite(ratio) && ratio > 0, line);
    }
  },
});
