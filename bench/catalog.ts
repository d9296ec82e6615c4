/**
 * Catalog benchmark: `GET /v2/_catalog?n=100` against a data directory of many repositories.
 *
 * Builds the tree directly (distribution's layout), starts berth in-process on 127.0.0.1, then
 * times: the first page (the walk reads the folders on its way, nothing else), pages of 100 at
 * several offsets, a page right after another store on the same directory created a repository
 * (seen at once: the folder's `stat` tells the kept listing is stale), and the first page of a
 * fresh process. Usage:
 *
 *   deno run -A bench/catalog.ts [--repos 100000] [--data DIR] [--keep]
 *
 * @module
 */
import { createApp } from "../src/app.ts";
import { makeConfig } from "../src/config.ts";
import { digestBytes } from "../src/oci/digest.ts";
import { fsStore } from "../src/storage/open_store.ts";

const args = Deno.args;
const flag = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const count = Number(flag("--repos") ?? 100_000);
const dataDir = flag("--data") ?? await Deno.makeTempDir({ prefix: "berth-bench-catalog-" });
const keep = args.includes("--keep");
const digest = digestBytes(new TextEncoder().encode("bench manifest"));

function nameOf(i: number): string {
  return `org${String(i % 100).padStart(2, "0")}/repo${String(i).padStart(6, "0")}`;
}

const base = `${dataDir}/docker/registry/v2/repositories`;
const marker = `${base}/${nameOf(count - 1)}/_manifests/tags/latest/current/link`;
if (!(await Deno.stat(marker).catch(() => undefined))) {
  const started = performance.now();
  const encoded = new TextEncoder().encode(digest.value);
  for (let i = 0; i < count; i += 500) {
    await Promise.all(Array.from({ length: Math.min(500, count - i) }, async (_, k) => {
      const dir = `${base}/${nameOf(i + k)}/_manifests/tags/latest/current`;
      await Deno.mkdir(dir, { recursive: true });
      await Deno.writeFile(`${dir}/link`, encoded);
    }));
  }
  console.log(
    `built ${count} repositories in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
}

const app = createApp(makeConfig({ dataDir, addr: "127.0.0.1:0", accessLog: false }), {
  logError: () => {},
});
const { promise: listening, resolve } = Promise.withResolvers<number>();
const server = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen: ({ port }) => resolve(port) },
  app.handler,
);
const url = `http://127.0.0.1:${await listening}`;

async function page(query: string): Promise<{ ms: number; repositories: string[] }> {
  const started = performance.now();
  const response = await fetch(`${url}/v2/_catalog?${query}`);
  const body = await response.json() as { repositories: string[] };
  return { ms: performance.now() - started, repositories: body.repositories };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

try {
  const first = await page("n=100");
  console.log(`first page (${count} repositories): ${first.ms.toFixed(0)} ms`);
  const timings: number[] = [];
  for (let round = 0; round < 5; round++) {
    for (const at of [0, 0.25, 0.5, 0.75, 0.99]) {
      const last = nameOf(Math.floor(count * at));
      const { ms, repositories } = await page(`n=100&last=${encodeURIComponent(last)}`);
      if (repositories.length === 0) throw new Error("empty page");
      timings.push(ms);
    }
  }
  console.log(
    `page of 100 (25 requests at 5 offsets): median ${median(timings).toFixed(1)} ms, ` +
      `max ${Math.max(...timings).toFixed(1)} ms`,
  );
  const other = fsStore(dataDir);
  await other.putTag("zz-new/repository", "latest", digest);
  const after = await page(`n=100&last=${encodeURIComponent(nameOf(count - 1))}`);
  if (!after.repositories.includes("zz-new/repository")) throw new Error("missed a new repository");
  console.log(`page after another process added a repository: ${after.ms.toFixed(1)} ms`);
  const restart = createApp(makeConfig({ dataDir, accessLog: false }), { logError: () => {} });
  const started = performance.now();
  await restart.registry.store.repositoryPage(undefined, 100);
  console.log(
    `first page of a fresh process: ${(performance.now() - started).toFixed(0)} ms`,
  );
  await restart.close();
} finally {
  await server.shutdown();
  await app.close();
  if (!keep && flag("--data") === undefined) await Deno.remove(dataDir, { recursive: true });
}
