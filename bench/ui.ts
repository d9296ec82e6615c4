/// <reference lib="dom" />
/**
 * Web UI benchmark: the repository list (`/ui/`) of a registry with many repositories, the
 * server and the browser measured apart.
 *
 * Builds the tree directly (distribution's layout: one tag per repository), starts berth as a
 * child process (`deno run main.ts serve`), then measures:
 * - the server: the first `/ui/` after start, then time to first byte and to the whole answer of
 *   list pages (first, middle, filtered), medians over the rounds;
 * - the browser (headless Debian `chromium`, cache off): first and largest contentful paint of the
 *   live `/ui/`; of the same HTML and script served as
 *   static files (what the page costs the browser alone); and of an empty page (what the browser
 *   costs whatever the page: the floor the 300 ms goal sits on); and the bytes `/ui/` transfers;
 * - the renderer's main-thread CPU time until first paint (from a Chrome trace, in loads of their
 *   own) for the static page and the empty one: thread time, which a loaded machine moves far
 *   less than wall-clock paint times, split into parse, style, layout and paint.
 *
 * `deno task bench --only ui` appends its section to the bench report; alone:
 *
 *   deno run -A bench/ui.ts [--repos 10000] [--rounds 9] [--data DIR] [--tmp DIR]
 *
 * (`--data DIR` keeps the tree there for the next run.)
 *
 * @module
 */
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { digestBytes } from "../src/oci/digest.ts";
import { type BenchServer, startBerth } from "./servers.ts";

/** Options of {@link runUiBench}. */
export interface UiBenchOptions {
  /** Repositories in the registry. */
  repositories: number;
  /** Loads of each page measured (medians are reported). */
  rounds: number;
  /** Keep the tree here (reused when it is already built); default: a temporary folder. */
  dataDir?: string;
  /** Where the temporary folder goes. */
  tmpDir?: string;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** Defaults of {@link runUiBench}. */
export const UI_BENCH_DEFAULTS: UiBenchOptions = { repositories: 10_000, rounds: 9 };

/** The goals of issue 14. */
const PAINT_GOAL_MS = 300;
const WEIGHT_GOAL_BYTES = 100_000;

/** One row of the report. */
interface Row {
  label: string;
  values: number[];
  unit: "ms" | "KB";
  goal?: string;
  met?: boolean;
}

function nameOf(i: number): string {
  return `team${String(i % 50).padStart(2, "0")}/service-${String(i).padStart(6, "0")}`;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

/** Write `count` repositories (one tag each) straight into distribution's tree. */
async function buildTree(dataDir: string, count: number, log: (line: string) => void) {
  const base = `${dataDir}/docker/registry/v2/repositories`;
  const marker = `${base}/${nameOf(count - 1)}/_manifests/tags/latest/current/link`;
  if (await Deno.stat(marker).catch(() => undefined)) return;
  const started = performance.now();
  const link = new TextEncoder().encode(digestBytes(new TextEncoder().encode("bench")).value);
  for (let i = 0; i < count; i += 500) {
    await Promise.all(Array.from({ length: Math.min(500, count - i) }, async (_, k) => {
      const dir = `${base}/${nameOf(i + k)}/_manifests/tags/latest/current`;
      await Deno.mkdir(dir, { recursive: true });
      await Deno.writeFile(`${dir}/link`, link);
    }));
  }
  log(`ui: built ${count} repositories in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

/** Time to the response headers and to the end of the body of one GET. */
async function timeGet(url: string): Promise<{ first: number; whole: number; text: string }> {
  const started = performance.now();
  const response = await fetch(url);
  const first = performance.now() - started;
  const text = await response.text();
  if (response.status !== 200) throw new Error(`${url}: ${response.status}`);
  return { first, whole: performance.now() - started, text };
}

function chromiumPath(): string {
  const found = new Deno.Command("sh", {
    args: ["-c", "command -v chromium"],
    stdout: "piped",
    stderr: "null",
  }).outputSync();
  return new TextDecoder().decode(found.stdout).trim();
}

/** Browser timings of one load. */
interface Load {
  response: number;
  paint: number;
  largest: number;
  bytes: number;
}

/**
 * The renderer's main-thread CPU time (ms) from navigation start to first contentful paint, read
 * from a Chrome trace of one load: thread time, not wall time, so other processes on a loaded
 * machine move it far less than the paint timings. Parse, style, layout and paint apart.
 */
interface RendererCpu {
  total: number;
  parse: number;
  style: number;
  layout: number;
  paint: number;
}

/** Load `target` once with a trace running and sum its renderer's main-thread CPU to FCP. */
async function traceLoad(browser: Browser, target: string): Promise<RendererCpu | undefined> {
  const context = await browser.createBrowserContext();
  try {
    const page: Page = await context.newPage();
    await page.setCacheEnabled(false);
    await page.tracing.start({
      categories: [
        "devtools.timeline",
        "disabled-by-default-devtools.timeline",
        "loading",
        "blink.user_timing",
        "toplevel",
      ],
    });
    await page.goto(target, { waitUntil: "load" });
    // The paint entry is written to the trace once the frame is presented.
    await page.evaluate(() =>
      new Promise((resolve) => {
        new PerformanceObserver(resolve).observe({ type: "paint", buffered: true });
        setTimeout(resolve, 5_000);
      })
    );
    const trace = JSON.parse(new TextDecoder().decode(await page.tracing.stop()));
    type TraceEvent = {
      name: string;
      ph: string;
      ts: number;
      pid: number;
      tid: number;
      tdur?: number;
      args?: { data?: { documentLoaderURL?: string } };
    };
    const events: TraceEvent[] = trace.traceEvents ?? [];
    const start = events.find((e) =>
      e.name === "navigationStart" && e.args?.data?.documentLoaderURL?.startsWith("http")
    );
    const paint = events.find((e) => e.name === "firstContentfulPaint");
    if (!start || !paint) return undefined;
    const sum = (name: string) =>
      events.filter((e) =>
        e.name === name && e.ph === "X" && e.pid === paint.pid && e.tid === paint.tid &&
        e.ts >= start.ts && e.ts <= paint.ts
      ).reduce((total, e) => total + (e.tdur ?? 0), 0) / 1000;
    return {
      total: sum("RunTask"),
      parse: sum("ParseHTML"),
      style: sum("UpdateLayoutTree"),
      layout: sum("Layout"),
      paint: sum("Paint"),
    };
  } finally {
    await context.close();
  }
}

/** Load `target` once in a fresh page (cache off) and read its paint timings. */
async function load(browser: Browser, target: string): Promise<Load> {
  const context = await browser.createBrowserContext();
  try {
    const page: Page = await context.newPage();
    await page.setCacheEnabled(false);
    await page.goto(target, { waitUntil: "load" });
    return await page.evaluate(() =>
      new Promise<Load>((resolve) => {
        const perf = globalThis.performance;
        const navigation = perf.getEntriesByType("navigation")[0] as
          | PerformanceNavigationTiming
          | undefined;
        const entries = [
          navigation,
          ...perf.getEntriesByType("resource"),
        ] as (PerformanceResourceTiming | undefined)[];
        const bytes = entries.reduce((sum, entry) => sum + (entry?.transferSize ?? 0), 0);
        const result = {
          response: navigation?.responseStart ?? NaN,
          paint: NaN,
          largest: NaN,
          bytes,
        };
        let pending = 2;
        const done = () => --pending === 0 && resolve(result);
        // A paint never reported (a hidden page) leaves its figure out rather than hang.
        setTimeout(() => resolve(result), 10_000);
        // Paint entries are delivered once the frame is presented; buffered ones come at once.
        new PerformanceObserver((list, observer) => {
          const entry = list.getEntriesByName("first-contentful-paint")[0];
          if (!entry) return;
          result.paint = entry.startTime;
          observer.disconnect();
          done();
        }).observe({ type: "paint", buffered: true });
        // The largest text or image painted up to now (the page has loaded: its last candidate).
        new PerformanceObserver((list, observer) => {
          const entry = list.getEntries().at(-1);
          if (!entry) return;
          result.largest = entry.startTime;
          observer.disconnect();
          done();
        }).observe({ type: "largest-contentful-paint", buffered: true });
      })
    );
  } finally {
    await context.close();
  }
}

/**
 * Run the UI bench; returns its markdown section (with a note instead of browser figures when
 * chromium is not installed).
 */
export async function runUiBench(given: Partial<UiBenchOptions> = {}): Promise<string> {
  const options = { ...UI_BENCH_DEFAULTS, ...given };
  const log = options.log ?? ((line: string) => console.error(line));
  const count = options.repositories;
  const rounds = options.rounds;
  const dataDir = options.dataDir ?? await Deno.makeTempDir({
    prefix: "berth-bench-ui-",
    ...(options.tmpDir && { dir: options.tmpDir }),
  });
  const started = new Date();
  const loadBefore = Deno.loadavg()[0] ?? NaN;
  const rows: Row[] = [];
  let berth: BenchServer | undefined;
  let browser: Browser | undefined;
  let bare: Deno.HttpServer | undefined;
  let note = "";
  try {
    await buildTree(dataDir, count, log);
    berth = await startBerth(dataDir);
    const url = berth.url;
    log(`ui: berth at ${url}, ${count} repositories`);
    const first = await timeGet(`${url}/ui/`);
    rows.push({
      label: "server: first `/ui/` after start, whole answer",
      values: [first.whole],
      unit: "ms",
    });
    const pages = [
      ["first page", "/ui/"],
      ["a middle page", `/ui/?last=${encodeURIComponent(nameOf(Math.floor(count / 2)))}`],
      ["filter `q=service-0099` (a page of matches)", "/ui/?q=service-0099"],
      [
        `filter \`q=${nameOf(count - 1).slice(7)}\` (one match, at the end)`,
        `/ui/?q=${nameOf(count - 1).slice(7)}`,
      ],
    ] as const;
    let html = first.text;
    for (const [label, path] of pages) {
      const firsts: number[] = [];
      const wholes: number[] = [];
      for (let i = 0; i < rounds; i++) {
        const timed = await timeGet(url + path);
        firsts.push(timed.first);
        wholes.push(timed.whole);
        if (path === "/ui/") html = timed.text;
      }
      rows.push({ label: `server: ${label}, first byte`, values: firsts, unit: "ms" });
      rows.push({ label: `server: ${label}, whole answer`, values: wholes, unit: "ms" });
    }

    const executablePath = chromiumPath();
    if (executablePath === "") {
      note = "chromium is not installed: no browser figures (install Debian's `chromium`).";
    } else {
      // The same page as static files, and an empty page, from a bare server in this process.
      const scriptPath = /<script src="([^"]+)"/.exec(html)?.[1]?.replaceAll("&amp;", "&");
      const script = scriptPath ? await (await fetch(url + scriptPath)).text() : "";
      const { promise: listening, resolve } = Promise.withResolvers<number>();
      bare = Deno.serve(
        { hostname: "127.0.0.1", port: 0, onListen: ({ port }) => resolve(port) },
        (request) => {
          const path = new URL(request.url).pathname;
          if (path === "/empty") {
            return new Response("<!doctype html><title>empty</title><p>empty", {
              headers: { "Content-Type": "text/html; charset=utf-8" },
            });
          }
          if (path.endsWith(".js")) {
            return new Response(script, { headers: { "Content-Type": "text/javascript" } });
          }
          return new Response(html, { headers: { "Content-Type": "text/html; charset=utf-8" } });
        },
      );
      const staticUrl = `http://127.0.0.1:${await listening}`;
      browser = await puppeteer.launch({
        executablePath,
        headless: true,
        args: [...(Deno.uid() === 0 ? ["--no-sandbox"] : []), "--disable-dev-shm-usage"],
      });
      const targets = {
        empty: `${staticUrl}/empty`,
        static: `${staticUrl}/ui/`,
        live: `${url}/ui/`,
      };
      const loads: Record<keyof typeof targets, Load[]> = { empty: [], static: [], live: [] };
      // One warm-up load of each, then the rounds interleaved.
      for (const target of Object.values(targets)) await load(browser, target);
      for (let i = 0; i < rounds; i++) {
        for (const [key, target] of Object.entries(targets) as [keyof typeof targets, string][]) {
          loads[key].push(await load(browser, target));
        }
      }
      const pick = (key: keyof typeof targets, field: keyof Load) =>
        loads[key].map((l) => l[field]);
      const paint = median(pick("live", "paint"));
      rows.push(
        {
          label: "browser: empty page, first contentful paint (the floor)",
          values: pick("empty", "paint"),
          unit: "ms",
        },
        {
          label: "browser: `/ui/` as static files, first contentful paint",
          values: pick("static", "paint"),
          unit: "ms",
        },
        {
          label: "browser: `/ui/` as static files, largest contentful paint",
          values: pick("static", "largest"),
          unit: "ms",
        },
        {
          label: "browser: live `/ui/`, response start",
          values: pick("live", "response"),
          unit: "ms",
        },
        {
          label: `browser: live \`/ui/\` at ${count} repositories, first contentful paint`,
          values: pick("live", "paint"),
          unit: "ms",
          goal: `< ${PAINT_GOAL_MS} ms`,
          met: paint < PAINT_GOAL_MS,
        },
        {
          label: "browser: live `/ui/`, largest contentful paint",
          values: pick("live", "largest"),
          unit: "ms",
        },
      );
      // Traced loads apart (tracing slows a load): the page's own CPU cost against the floor's.
      const traced: Record<"empty" | "static", RendererCpu[]> = { empty: [], static: [] };
      for (let i = 0; i < rounds; i++) {
        for (const key of ["empty", "static"] as const) {
          const cpu = await traceLoad(browser, targets[key]);
          if (cpu) traced[key].push(cpu);
        }
      }
      const cpuOf = (key: "empty" | "static", field: keyof RendererCpu) =>
        traced[key].map((cpu) => cpu[field]);
      if (traced.empty.length > 0 && traced.static.length > 0) {
        rows.push(
          {
            label: "renderer main-thread CPU to first paint: empty page",
            values: cpuOf("empty", "total"),
            unit: "ms",
          },
          {
            label: "renderer main-thread CPU to first paint: `/ui/` as static files",
            values: cpuOf("static", "total"),
            unit: "ms",
          },
          ...(["parse", "style", "layout", "paint"] as const).map((field): Row => ({
            label: `… of which ${field} (\`/ui/\`; empty page: ${
              median(cpuOf("empty", field)).toFixed(1)
            } ms)`,
            values: cpuOf("static", field),
            unit: "ms",
          })),
        );
      }
      const bytes = median(pick("live", "bytes"));
      rows.push({
        label: "page weight of `/ui/` transferred (HTML and script, no cache)",
        values: [bytes / 1000],
        unit: "KB",
        goal: `< ${WEIGHT_GOAL_BYTES / 1000} KB`,
        met: bytes < WEIGHT_GOAL_BYTES,
      });
    }
  } finally {
    await browser?.close();
    await bare?.shutdown();
    await berth?.stop();
    if (options.dataDir === undefined) await Deno.remove(dataDir, { recursive: true });
  }
  const ended = new Date();
  const lines = [
    "## Web UI: the repository list at scale (bench/ui.ts)",
    "",
    `Run ${started.toISOString()} → ${ended.toISOString()}; ${count} repositories (one tag each), ` +
    `berth as a child process; medians (min–max) over ${rounds} loads each, browser loads ` +
    `interleaved, cache off; load average ${loadBefore.toFixed(1)} → ${
      (Deno.loadavg()[0] ?? NaN).toFixed(1)
    }.`,
    "",
    "| measure | median | min–max | goal | met |",
    "|---|---:|---:|---|---|",
    ...rows.map((row) => {
      const fmt = (v: number) => row.unit === "KB" || v < 20 ? v.toFixed(1) : v.toFixed(0);
      const range = row.values.length > 1
        ? `${fmt(Math.min(...row.values))}–${fmt(Math.max(...row.values))}`
        : "";
      const met = row.met === undefined ? "" : row.met ? "yes" : "NO";
      return `| ${row.label} | ${fmt(median(row.values))} ${row.unit} | ${range} | ${
        row.goal ?? ""
      } | ${met} |`;
    }),
  ];
  if (note) lines.push("", note);
  return lines.join("\n") + "\n";
}

if (import.meta.main) {
  const args = Deno.args;
  const flag = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const repos = flag("--repos");
  const rounds = flag("--rounds");
  const data = flag("--data");
  const tmp = flag("--tmp");
  console.log(
    await runUiBench({
      ...(repos && { repositories: Number(repos) }),
      ...(rounds && { rounds: Number(rounds) }),
      ...(data && { dataDir: data }),
      ...(tmp && { tmpDir: tmp }),
    }),
  );
}
