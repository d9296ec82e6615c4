/**
 * A smoke run of the copy benchmark (`deno task bench --only copy`) on tiny sizes, so it cannot
 * rot: every client ran on both images and the section has its rows. Never speed.
 */
import assert from "node:assert/strict";
import { runCopyBench } from "../bench/copy.ts";
import { skipWithout } from "./helpers/tools.ts";

Deno.test({
  name:
    "bench: a tiny copy run measures berth, skopeo, the destination floor and the Deno client floor",
  ignore: skipWithout("docker-registry", "skopeo", "curl"),
  async fn() {
    const lines: string[] = [];
    const report = await runCopyBench({
      bigMib: 1,
      layers: 2,
      layerMib: 1,
      rounds: 1,
      jobs: 2,
      log: (line) => lines.push(line),
    });
    // 2 clients × 2 images + each image's floor
    assert.equal(lines.length, 6, lines.join("\n"));
    const rows = report.split("\n").filter((l) => l.startsWith("| ") && !l.startsWith("| ---"));
    assert.deepEqual(rows.slice(1).map((r) => r.split(" | ").slice(0, 2).join(" | ")), [
      "| single layer (1 MiB) | berth copy",
      "| single layer (1 MiB) | skopeo copy",
      "| single layer (1 MiB) | curl -T (destination floor)",
      "| 2 layers × 1 MiB | berth copy",
      "| 2 layers × 1 MiB | skopeo copy",
      "| 2 layers × 1 MiB | Deno client floor",
    ]);
    for (const row of rows.slice(1)) {
      const seconds = Number(row.split(" | ")[2]);
      assert.ok(seconds > 0 && Number.isFinite(seconds), row);
    }
    assert.match(report, /RSS ≤ 150: (met|not met)/);
  },
});
