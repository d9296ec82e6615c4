/**
 * Where a big push's time and memory go, per thread, across servers run one after the other,
 * interleaved round by round: berth checkouts (`berth:DIR`, optionally `|--v8-flags=...`), the bare
 * `Deno.serve` (`bare`, bench/bare_server.ts) and the bare `Deno.listen` floors
 * (`floor:discard|file|hash|push`, bench/listen_floor.ts: what berth's own server costs the runtime
 * at least; `push` is the registry's upload protocol with the final `fdatasync`). Each push is one curl of a blob (`--mode put`: POST then PUT `?digest=` with the body;
 * `patch`: one PATCH with a Content-Length, then PUT; `chunked`: one PATCH with
 * `Transfer-Encoding: chunked`; the floors other than `floor:push` take a plain PUT and `put` only), after a scratch file of
 * the blob's size (`--warm-mib`) was written and removed (as `deno task bench` warms memory);
 * with `--first`, after one unmeasured push of the same blob to the fresh server.
 * Reported per push:
 * MB/s, CPU seconds per GiB of the whole process and of its main thread (user + system from
 * `/proc/PID/task/*`: what the machine's load moves far less than wall time), the other threads
 * that worked, the peak `VmRSS` (sampled every 20 ms) and how far it rose over the `VmRSS` just
 * before the push; then medians per server. With
 * `--quarters`, the upload file's size is sampled too and each quarter of the body gets its own
 * MB/s and CPU per GiB (main thread, other threads): whether a long body costs more per byte as
 * it goes on; and the last request (the PUT's digest check, `fsync` and rename) its own seconds.
 * With `--smaps`, `/proc/PID/smaps` is read before the push and at each new peak, and the rise is
 * split by kind of mapping: the `deno` binary's pages (its code, paged in as it runs: V8's
 * optimizing compilers among it), V8's heap (anonymous 256 KiB-aligned mappings), the C heap,
 * other anonymous memory (buffers of 2 MiB and more, thread stacks and arenas).
 *
 * `deno run -A bench/push_cpu.ts [--rounds 3] [--mib 1024] [--mode put] [--quarters] [--smaps]
 *   [--warm-mib N] [--first] berth:. floor:hash ...`
 *
 * @module
 */
import { parseArgs } from "node:util";
import { writeTestBlob } from "./servers.ts";
import { freePort } from "./servers.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  options: {
    rounds: { type: "string", default: "3" },
    mib: { type: "string", default: "1024" },
    mode: { type: "string", default: "put" },
    quarters: { type: "boolean", default: false },
    smaps: { type: "boolean", default: false },
    "warm-mib": { type: "string" },
    first: { type: "boolean", default: false },
  },
  allowPositionals: true,
});
const rounds = Number(values.rounds);
const mib = Number(values.mib);
const mode = values.mode;
const quarters = values.quarters;
const smaps = values.smaps;
/** Size of the scratch file written and removed before each push (default: the blob's). */
const warmMib = Number(values["warm-mib"] ?? mib);
/** Push the blob once, unmeasured, before the measured push (a server that has seen a push). */
const first = values.first;
if (!["put", "patch", "chunked"].includes(mode)) throw new Error(`unknown mode ${mode}`);
const variants = positionals.length ? positionals : ["berth:.", "bare", "floor:hash"];
const here = new URL(".", import.meta.url).pathname;

/** CPU seconds per thread (`main` for the main thread, else the thread's name, summed). */
function threadCpu(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const entry of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      const stat = Deno.readTextFileSync(`/proc/${pid}/task/${entry.name}/stat`);
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const key = Number(entry.name) === pid ? "main" : `${name}#${entry.name}`;
      out.set(key, (Number(fields[11]) + Number(fields[12])) / 100);
    } catch {
      // The thread ended.
    }
  }
  return out;
}

function rssMiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]) / 1024;
}

/** One unmeasured push of `blob` (`mode`'s requests) to `base`, into repository `bench/first`. */
async function pushOnce(base: string, registry: boolean, blob: string, digest: string) {
  const withDigest = (url: string) => `${url}${url.includes("?") ? "&" : "?"}digest=${digest}`;
  if (!registry) {
    await run("curl", ["-sf", "-T", blob, "-o", "/dev/null", withDigest(`${base}/upload`)]);
    return;
  }
  const post = ["-sf", "-X", "POST", "-o", "/dev/null", "-w", "%header{location}"];
  const session =
    new URL(await run("curl", [...post, `${base}/v2/bench/first/blobs/uploads/`]), base)
      .href;
  if (mode === "put") {
    await run("curl", ["-sf", "-T", blob, "-o", "/dev/null", withDigest(session)]);
    return;
  }
  const chunked = mode === "chunked" ? ["-H", "Transfer-Encoding: chunked"] : [];
  const patch = ["-sf", "-X", "PATCH", "-T", blob, ...chunked, "-o", "/dev/null", "-w"];
  const next = await run("curl", [...patch, "%header{location}", session]);
  const put = ["-sf", "-X", "PUT", "-H", "Content-Length: 0", "-o", "/dev/null"];
  await run("curl", [...put, withDigest(new URL(next, base).href)]);
}

/** Resident KiB of `pid` by kind of mapping (see the module note). */
function residentByKind(pid: number): Map<string, number> {
  const kinds = new Map<string, number>();
  let kind = "";
  for (const line of Deno.readTextFileSync(`/proc/${pid}/smaps`).split("\n")) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      const size = parseInt(head[2]!, 16) - parseInt(head[1]!, 16);
      const path = head[3] ?? "";
      kind = path === Deno.execPath() || path.endsWith("/deno")
        ? "deno binary"
        : path.startsWith("/")
        ? "other files"
        : path === "[heap]"
        ? "C heap"
        : path === ""
        ? size % (256 << 10) === 0 && size < (64 << 20) ? "V8 heap pages" : "other anonymous"
        : path;
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) kinds.set(kind, (kinds.get(kind) ?? 0) + Number(rss[1]));
  }
  return kinds;
}

/** The rise of each kind of mapping from `before` to `after`, MiB. */
function riseByKind(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  const rise = new Map<string, number>();
  for (const kind of new Set([...before.keys(), ...after.keys()])) {
    rise.set(kind, ((after.get(kind) ?? 0) - (before.get(kind) ?? 0)) / 1024);
  }
  return rise;
}

async function run(command: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(command, { args, stdin: "null" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`${command} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return text;
}

async function start(variant: string, dataDir: string) {
  const port = freePort();
  const env: Record<string, string> = { REGISTRY_LOG_ACCESSLOG_DISABLED: "true" };
  let args: string[];
  if (variant.startsWith("berth:")) {
    const [dir, ...flags] = variant.slice("berth:".length).split("|");
    const main = `${dir}/main.ts`;
    args = ["run", "-A", ...flags, main, "serve", "--addr", `127.0.0.1:${port}`, "--data", dataDir];
  } else if (variant.startsWith("floor:")) {
    args = ["run", "-A", `${here}listen_floor.ts`, String(port), dataDir, variant.slice(6)];
  } else if (variant === "bare") {
    args = ["run", "-A", `${here}bare_server.ts`, String(port), dataDir];
  } else throw new Error(`unknown server ${variant}`);
  const child = new Deno.Command(Deno.execPath(), { args, env, stdout: "null", stdin: "null" })
    .spawn();
  for (let i = 0; i < 300; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return { child, base: `http://127.0.0.1:${port}` };
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  child.kill();
  throw new Error(`${variant} did not start`);
}

/**
 * MB/s and CPU s/GiB (main thread + other threads) of each quarter of the body, from the samples
 * nearest to where the upload file crossed each quarter.
 */
function quarterLine(
  trace: { at: number; size: number; main: number; other: number }[],
  bytes: number,
): string {
  const parts: string[] = [];
  let from = { at: 0, size: 0, main: 0, other: 0 };
  for (let q = 1; q <= 4; q++) {
    const to = trace.find((sample) => sample.size >= bytes * q / 4) ?? trace.at(-1);
    if (!to || to.size <= from.size) break;
    const gib = (to.size - from.size) / (1 << 30);
    parts.push(
      `Q${q} ${((to.size - from.size) / 1e6 / (to.at - from.at)).toFixed(0)} MB/s main ${
        ((to.main - from.main) / gib).toFixed(2)
      } other ${((to.other - from.other) / gib).toFixed(2)}`,
    );
    from = to;
  }
  return parts.join(" | ");
}

/** The kinds that rose or fell by 0.1 MiB or more, largest first. */
function kindLine(rise: Map<string, number>): string {
  return [...rise].filter(([, mib]) => Math.abs(mib) >= 0.1).sort((a, b) => b[1] - a[1])
    .map(([kind, mib]) => `${kind} ${mib >= 0 ? "+" : ""}${mib.toFixed(1)}`).join(", ");
}

const work = await Deno.makeTempDir({ prefix: "push_cpu_" });
try {
  const blob = `${work}/blob`;
  const digest = await writeTestBlob(blob, mib);
  const results = new Map<
    string,
    {
      mbs: number[];
      cpu: number[];
      main: number[];
      rss: number[];
      grew: number[];
      kinds: Map<string, number>[];
    }
  >();
  for (let round = 0; round < rounds; round++) {
    for (const variant of round % 2 ? [...variants].reverse() : variants) {
      const dataDir = `${work}/data`;
      await Deno.mkdir(dataDir, { recursive: true });
      const warm = async () => {
        const scratch = `of=${work}/scratch`;
        await run("dd", ["if=/dev/zero", scratch, "bs=1M", `count=${warmMib}`, "status=none"]);
        await Deno.remove(`${work}/scratch`);
      };
      await warm();
      const { child, base } = await start(variant, dataDir);
      try {
        // The push floor speaks the upload protocol; the others take one plain PUT.
        const registry = !variant.startsWith("floor:") || variant === "floor:push";
        if (first) {
          await pushOnce(base, registry, blob, digest);
          await warm();
        }
        const session = registry
          ? new URL(
            await run("curl", [
              "-sf",
              "-X",
              "POST",
              "-o",
              "/dev/null",
              "-w",
              "%header{location}",
              `${base}/v2/bench/push/blobs/uploads/`,
            ]),
            base,
          ).href
          : `${base}/upload`;
        const id = session.slice(session.lastIndexOf("/") + 1);
        const uploadFile = !registry
          ? undefined
          : variant.startsWith("berth:")
          ? `${dataDir}/docker/registry/v2/repositories/bench/push/_uploads/${id}/data`
          : `${dataDir}/upload-${id}`;
        const withDigest = (url: string) =>
          `${url}${url.includes("?") ? "&" : "?"}digest=${digest}`;
        const before = threadCpu(child.pid);
        const idle = rssMiB(child.pid);
        const idleKinds = smaps ? residentByKind(child.pid) : undefined;
        let peakKinds = idleKinds;
        let peak = 0;
        let sampling = true;
        const t0 = performance.now();
        /** Per sample: seconds since t0, bytes in the upload file, main and other threads' CPU. */
        const trace: { at: number; size: number; main: number; other: number }[] = [];
        const sampler = (async () => {
          while (sampling) {
            const rss = rssMiB(child.pid);
            if (smaps && rss > peak) peakKinds = residentByKind(child.pid);
            peak = Math.max(peak, rss);
            if (quarters && uploadFile) {
              try {
                const size = Deno.statSync(uploadFile).size;
                let main = 0;
                let other = 0;
                for (const [thread, cpu] of threadCpu(child.pid)) {
                  if (thread === "main") main += cpu - (before.get(thread) ?? 0);
                  else other += cpu - (before.get(thread) ?? 0);
                }
                trace.push({ at: (performance.now() - t0) / 1000, size, main, other });
              } catch {
                // Not there yet, or renamed.
              }
            }
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
        })();
        let lastRequest = 0;
        if (mode === "put" || !registry) {
          await run("curl", ["-sf", "-T", blob, "-o", "/dev/null", withDigest(session)]);
        } else {
          const chunked = mode === "chunked" ? ["-H", "Transfer-Encoding: chunked"] : [];
          const next = await run("curl", [
            "-sf",
            "-X",
            "PATCH",
            "-T",
            blob,
            ...chunked,
            "-o",
            "/dev/null",
            "-w",
            "%header{location}",
            session,
          ]);
          lastRequest = performance.now();
          await run("curl", [
            "-sf",
            "-X",
            "PUT",
            "-H",
            "Content-Length: 0",
            "-o",
            "/dev/null",
            withDigest(new URL(next, base).href),
          ]);
        }
        const seconds = (performance.now() - t0) / 1000;
        const putSeconds = lastRequest ? (performance.now() - lastRequest) / 1000 : 0;
        sampling = false;
        await sampler;
        const gib = mib / 1024;
        let total = 0;
        const spent = new Map<string, number>();
        for (const [thread, cpu] of threadCpu(child.pid)) {
          const used = cpu - (before.get(thread) ?? 0);
          total += used;
          const name = thread === "main" ? thread : thread.slice(0, thread.indexOf("#"));
          spent.set(name, (spent.get(name) ?? 0) + used);
        }
        const result = results.get(variant) ?? {
          mbs: [],
          cpu: [],
          main: [],
          rss: [],
          grew: [],
          kinds: [],
        };
        results.set(variant, result);
        result.mbs.push(mib * 1.048576 / seconds);
        result.cpu.push(total / gib);
        result.main.push((spent.get("main") ?? 0) / gib);
        result.rss.push(peak);
        result.grew.push(peak - idle);
        const threads = [...spent].filter(([, cpu]) => cpu >= 0.02)
          .map(([name, cpu]) => `${name} ${(cpu / gib).toFixed(2)}`).join(", ");
        console.log(
          `round ${round + 1} ${variant}: ${result.mbs.at(-1)!.toFixed(0)} MB/s, CPU ${
            (total / gib).toFixed(2)
          } s/GiB (${threads}), peak RSS ${peak.toFixed(0)} MiB (${idle.toFixed(0)} before)${
            putSeconds ? `, PUT ${putSeconds.toFixed(2)} s` : ""
          }`,
        );
        if (quarters) console.log(`  ${quarterLine(trace, mib << 20)}`);
        if (idleKinds && peakKinds) {
          const rise = riseByKind(idleKinds, peakKinds);
          result.kinds.push(rise);
          console.log(`  rise by kind, MiB: ${kindLine(rise)}`);
        }
      } finally {
        child.kill("SIGTERM");
        await child.status;
        await Deno.remove(dataDir, { recursive: true });
      }
    }
  }
  const median = (list: number[]) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)]!;
  const load = (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
  console.log(`\nmedians of ${rounds} rounds, ${mib} MiB, mode ${mode}, load average now ${load}`);
  for (const [variant, r] of results) {
    console.log(
      `${variant}: ${median(r.mbs).toFixed(0)} MB/s (${Math.min(...r.mbs).toFixed(0)}–${
        Math.max(...r.mbs).toFixed(0)
      }), CPU ${median(r.cpu).toFixed(2)} s/GiB, main thread ${
        median(r.main).toFixed(2)
      } s/GiB, peak RSS ${median(r.rss).toFixed(0)} MiB (${
        median(r.grew).toFixed(1)
      } over the RSS before the push)`,
    );
    if (r.kinds.length) {
      const kinds = new Set(r.kinds.flatMap((rise) => [...rise.keys()]));
      const medians = new Map(
        [...kinds].map((kind) => [kind, median(r.kinds.map((rise) => rise.get(kind) ?? 0))]),
      );
      console.log(`  rise by kind (medians), MiB: ${kindLine(medians)}`);
    }
  }
} finally {
  await Deno.remove(work, { recursive: true });
}
