/**
 * Web UI benchmark: the repository list (`/ui/`) of a registry with many repositories.
 *
 * Builds the tree directly (distribution's layout: one tag per repository), starts berth
 * in-process on 127.0.0.1, then measures the server's render time of list pages (first page, a
 * page in the middle, a filtered page) and, in headless Chromium (Debian's `chromium`), the first
 * contentful paint of `/ui/` and the bytes it transferred. Usage:
 *
 *   deno run -A bench/ui.ts [--repos 10000] [--rounds 15] [--data DIR] [--keep]
 *
 * @module
 */
import puppeteer from "puppeteer-core";
import { createApp } from "../src/app.ts";
import { makeConfig } from "../src/config.ts";
import { digestBytes } from "../src/oci/digest.ts";

const args = Deno.args;
const flag = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const count = Number(flag("--repos") ?? 10_000);
const rounds = Number(flag("--rounds") ?? 15);
const dataDir = flag("--data") ?? await Deno.makeTempDir({ prefix: "berth-bench-ui-" });
const keep = args.includes("--keep");
const digest = digestBytes(new TextEncoder().encode("bench manifest"));

function nameOf(i: number): string {
  return `team${String(i % 50).padStart(2, "0")}/service-${String(i).padStart(6, "0")}`;
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

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function render(path: string): Promise<{ ms: number; bytes: number; rows: number }> {
  const started = performance.now();
  const response = await fetch(url + path);
  const text = await response.text();
  if (response.status !== 200) throw new Error(`${path}: ${response.status}`);
  return {
    ms: performance.now() - started,
    bytes: new TextEncoder().encode(text).byteLength,
    rows: text.split("<tr data-key=").length - 1,
  };
}

try {
  // The first request builds the catalog index (a walk of the tree, once); not part of a render.
  const first = await render("/ui/");
  console.log(`first /ui/ after start (builds the catalog index): ${first.ms.toFixed(0)} ms`);
  const middle = nameOf(Math.floor(count / 2));
  for (
    const [label, path] of [
      ["first page", "/ui/"],
      ["middle page", `/ui/?last=${encodeURIComponent(middle)}`],
      ["filtered (q=service-0099)", "/ui/?q=service-0099"],
    ] as const
  ) {
    const times: number[] = [];
    let last = { ms: 0, bytes: 0, rows: 0 };
    for (let i = 0; i < rounds; i++) {
      last = await render(path);
      times.push(last.ms);
    }
    console.log(
      `server render, ${label}: median ${median(times).toFixed(1)} ms over ${rounds} ` +
        `(min ${Math.min(...times).toFixed(1)}), ${last.rows} rows, ${
          (last.bytes / 1024).toFixed(1)
        } KiB HTML`,
    );
  }

  const executablePath = new TextDecoder().decode(
    new Deno.Command("sh", { args: ["-c", "command -v chromium"], stdout: "piped" }).outputSync()
      .stdout,
  ).trim();
  if (executablePath === "") {
    console.log("chromium not installed: no first-paint figure");
  } else {
    const browser = await puppeteer.launch({
      executablePath,
      headless: true,
      args: [...(Deno.uid() === 0 ? ["--no-sandbox"] : []), "--disable-dev-shm-usage"],
    });
    // A bare server's one-line page: what the browser alone costs on this machine.
    const bare = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      () =>
        new Response("<!doctype html><title>bare</title><h1>Repositories</h1>", {
          headers: { "Content-Type": "text/html; charset=utf-8" },
        }),
    );
    try {
      const page = await (await browser.createBrowserContext()).newPage();
      await page.setCacheEnabled(false);
      const ui = await measurePage(page, `${url}/ui/`);
      const baseline = await measurePage(page, `http://127.0.0.1:${bare.addr.port}/`);
      const show = (label: string, m: PageTimes) =>
        console.log(
          `chromium, ${label}: first contentful paint median ${m.paint.toFixed(0)} ms ` +
            `(min ${m.minPaint.toFixed(0)}), HTML received ${m.response.toFixed(0)} ms, ` +
            `load event ${m.load.toFixed(0)} ms, ${(m.bytes / 1024).toFixed(1)} KiB transferred ` +
            `(no cache), medians over ${rounds} loads`,
        );
      show(`/ui/ with ${count} repositories`, ui);
      show("baseline (one-line page from a bare Deno.serve)", baseline);
    } finally {
      await bare.shutdown();
      await browser.close();
    }
  }
} finally {
  await server.shutdown();
  await app.close();
  if (!keep && flag("--data") === undefined) await Deno.remove(dataDir, { recursive: true });
}

/** Browser timings of one page, medians over the rounds. */
interface PageTimes {
  paint: number;
  minPaint: number;
  response: number;
  load: number;
  bytes: number;
}

async function measurePage(
  page: import("puppeteer-core").Page,
  target: string,
): Promise<PageTimes> {
  const paints: number[] = [];
  const responses: number[] = [];
  const loads: number[] = [];
  let bytes = 0;
  for (let i = 0; i < rounds; i++) {
    await page.goto("about:blank");
    await page.goto(target, { waitUntil: "load" });
    // The paint entry appears once the frame has been presented.
    await page.waitForFunction(() =>
      (globalThis as unknown as {
        performance: { getEntriesByName(n: string): unknown[] };
      }).performance.getEntriesByName("first-contentful-paint").length > 0
    );
    const timing = await page.evaluate(() => {
      const perf = (globalThis as unknown as {
        performance: {
          getEntriesByName(n: string): { startTime: number }[];
          getEntriesByType(t: string): {
            responseEnd: number;
            loadEventEnd: number;
            transferSize?: number;
          }[];
        };
      }).performance;
      const navigation = perf.getEntriesByType("navigation")[0];
      const entries = [navigation, ...perf.getEntriesByType("resource")];
      return {
        paint: perf.getEntriesByName("first-contentful-paint")[0]?.startTime ?? -1,
        response: navigation?.responseEnd ?? -1,
        load: navigation?.loadEventEnd ?? -1,
        bytes: entries.reduce((sum, entry) => sum + (entry?.transferSize ?? 0), 0),
      };
    });
    paints.push(timing.paint);
    responses.push(timing.response);
    loads.push(timing.load);
    bytes = timing.bytes;
  }
  return {
    paint: median(paints),
    minPaint: Math.min(...paints),
    response: median(responses),
    load: median(loads),
    bytes,
  };
}
