/**
 * The two registries under test, each a child process on 127.0.0.1 with a fresh data directory:
 * berth (`deno run main.ts serve`) and Debian's `docker-registry` (distribution 2.8.2) with a
 * config written here. Also reads a process's memory from `/proc`.
 *
 * @module
 */
import { createHash } from "node:crypto";

/** A registry process under test. */
export interface BenchServer {
  /** Short name used in the table (`berth`, `distribution`). */
  name: string;
  /** Base URL, `http://127.0.0.1:<port>`. */
  url: string;
  /** The process id (for `/proc/<pid>/status`). */
  pid: number;
  /** Its data directory. */
  dataDir: string;
  /** Stop the process and wait for it. */
  stop(): Promise<void>;
}

/** Memory of a process from `/proc/<pid>/status`, in bytes. */
export interface Memory {
  /** Resident set size now (`VmRSS`). */
  rss: number;
  /** Peak resident set size since start (`VmHWM`). */
  hwm: number;
  /** Of `rss`, the process's own memory (`RssAnon`); the rest is pages mapped from files (the
   * executable) and shared memory. */
  anon: number;
}

/**
 * Read a `/proc` file. Deno reads `/proc` only with `--allow-all` (the `deno task bench*` tasks
 * give it); without, `cat` reads it (`--allow-run`): a process spawned per sample, which an
 * `RssSampler` every 25 ms turns into ~40 a second on the cores the servers measured use.
 */
export async function readProc(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotCapable)) return undefined;
  }
  const { success, stdout } = await new Deno.Command("cat", {
    args: [path],
    stdin: "null",
    stderr: "null",
  }).output();
  return success ? new TextDecoder().decode(stdout) : undefined;
}

/** Read `VmRSS` and `VmHWM` of a process; `undefined` when `/proc` has no such process. */
export async function readMemory(pid: number): Promise<Memory | undefined> {
  const text = await readProc(`/proc/${pid}/status`);
  if (text === undefined) return undefined;
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(text)?.[1]);
  const rss = kib("VmRSS");
  const hwm = kib("VmHWM");
  const anon = kib("RssAnon");
  return Number.isFinite(rss) && Number.isFinite(hwm) && Number.isFinite(anon)
    ? { rss: rss * 1024, hwm: hwm * 1024, anon: anon * 1024 }
    : undefined;
}

/**
 * CPU time a process has used so far (user + system, all threads), in seconds; with `thread`,
 * that thread's only (the main thread's id is the process id: its JavaScript).
 */
export async function readCpuSeconds(pid: number, thread?: number): Promise<number> {
  const text = await readProc(
    thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`,
  );
  // Fields after the command name (which may hold spaces) start at ") ".
  const fields = text?.slice(text.lastIndexOf(")") + 2).split(" ") ?? [];
  const ticks = Number(fields[11]) + Number(fields[12]);
  return ticks / 100;
}

/** Samples a process's `VmRSS` every few milliseconds and keeps the largest value seen. */
export class RssSampler {
  #running = true;
  #peak = 0;
  #peakAnon = 0;
  #loop: Promise<void>;

  /** Start sampling `pid` every `intervalMs`. */
  constructor(readonly pid: number, intervalMs = 25) {
    this.#loop = (async () => {
      while (this.#running) {
        await this.#sample();
        await new Promise((resolve) => setTimeout(resolve, intervalMs));
      }
    })();
  }

  /** Stop sampling; returns the peak `VmRSS` in bytes. */
  async stop(): Promise<number> {
    this.#running = false;
    await this.#loop;
    await this.#sample();
    return this.#peak;
  }

  /** The peak `RssAnon` in bytes (the process's own memory, without the executable's pages). */
  get peakAnon(): number {
    return this.#peakAnon;
  }

  async #sample(): Promise<void> {
    const memory = await readMemory(this.pid);
    if (memory && memory.rss > this.#peak) this.#peak = memory.rss;
    if (memory && memory.anon > this.#peakAnon) this.#peakAnon = memory.anon;
  }
}

/** A free TCP port on 127.0.0.1 (asked of the kernel, then released). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/**
 * Start berth from this checkout as a child process (`deno run main.ts serve`); `env` adds
 * settings (`REGISTRY_PROXY_REMOTEURL`, ...); `allowAll` for a data directory under `/dev` (where
 * Deno asks for `--allow-all`: bench/growth.ts puts its trees in `/dev/shm`); `main` runs another
 * checkout's `main.ts` (or a bundle), named `name` in tables.
 */
export async function startBerth(
  dataDir: string,
  env: Record<string, string> = {},
  options: { allowAll?: boolean; main?: string; name?: string } = {},
): Promise<BenchServer> {
  const port = freePort();
  const main = options.main ?? new URL("../main.ts", import.meta.url).pathname;
  const args = [
    "run",
    ...(options.allowAll
      ? ["--allow-all"]
      : ["--allow-net", "--allow-read", "--allow-write", "--allow-env"]),
    main,
    "serve",
    "--addr",
    `127.0.0.1:${port}`,
    "--data",
    dataDir,
  ];
  // Same settings as distribution's config below: no access log.
  const settings = { REGISTRY_LOG_ACCESSLOG_DISABLED: "true", ...env };
  return await spawn(options.name ?? "berth", Deno.execPath(), args, port, dataDir, settings);
}

/**
 * Build berth as shipped, the minified bundle of `deno task bundle` (the Dockerfile and the image
 * use it), from this checkout into `dir`, and run it once (`version`) so Deno's code cache is
 * warm as on an installed server. Returns the bundle's path, for {@link startBerth}'s `main`.
 */
export async function buildBundle(dir: string): Promise<string> {
  const bundle = `${dir}/berth.js`;
  const built = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--quiet", "--minify", "--output", bundle, "main.ts"],
    cwd: new URL("..", import.meta.url).pathname,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!built.success) throw new Error(`deno bundle: ${new TextDecoder().decode(built.stderr)}`);
  const warm = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-env", "--allow-read", bundle, "version"],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).output();
  if (!warm.success) throw new Error(`${bundle} version: exit ${warm.code}`);
  return bundle;
}

/** Start the bare `Deno.serve` reference (`bare_server.ts`): the runtime's floor for berth. */
export async function startBare(dataDir: string): Promise<BenchServer> {
  const port = freePort();
  const script = new URL("./bare_server.ts", import.meta.url).pathname;
  const args = [
    "run",
    "--allow-net",
    "--allow-read",
    "--allow-write",
    script,
    String(port),
    dataDir,
  ];
  return await spawn("bare Deno.serve", Deno.execPath(), args, port, dataDir);
}

/**
 * Start the `Deno.listen` push floor (`listen_floor.ts`, mode `push`): the upload protocol's
 * read, SHA-256, write and final `fdatasync` and nothing else, what any Deno server pays for a push.
 * `mode` is the script's arguments after the data directory (`["get", "read:1"]`: the GET floor).
 */
export async function startFloor(
  dataDir: string,
  mode: string[] = ["push"],
): Promise<BenchServer> {
  const port = freePort();
  const script = new URL("./listen_floor.ts", import.meta.url).pathname;
  const args = ["run", "--allow-net", "--allow-read", "--allow-write", script];
  return await spawn(
    "Deno.listen floor",
    Deno.execPath(),
    [...args, String(port), dataDir, ...mode],
    port,
    dataDir,
  );
}

/**
 * Start Debian's `docker-registry` with a config of our own (filesystem, deletes, quiet logs);
 * `options.proxy` makes it a pull-through cache of that upstream URL (`proxy.remoteurl`).
 */
export async function startDistribution(
  dataDir: string,
  options: { proxy?: string } = {},
): Promise<BenchServer> {
  const port = freePort();
  await Deno.mkdir(dataDir, { recursive: true });
  const configPath = `${dataDir}.yml`;
  // The usual registry:2 settings (in-memory blob descriptor cache), without request logging:
  // berth logs no requests either.
  await Deno.writeTextFile(
    configPath,
    [
      "version: 0.1",
      "log:",
      "  level: error",
      "  accesslog:",
      "    disabled: true",
      "storage:",
      "  cache:",
      "    blobdescriptor: inmemory",
      "  filesystem:",
      `    rootdirectory: ${dataDir}`,
      "  delete:",
      "    enabled: true",
      "  maintenance:",
      "    uploadpurging:",
      "      enabled: false",
      "http:",
      `  addr: 127.0.0.1:${port}`,
      ...(options.proxy ? ["proxy:", `  remoteurl: ${options.proxy}`] : []),
      "",
    ].join("\n"),
  );
  const server = await spawn(
    "distribution",
    "docker-registry",
    ["serve", configPath],
    port,
    dataDir,
  );
  return {
    ...server,
    stop: async () => {
      await server.stop();
      await Deno.remove(configPath).catch(() => {});
    },
  };
}

async function spawn(
  name: string,
  command: string,
  args: string[],
  port: number,
  dataDir: string,
  env: Record<string, string> = {},
): Promise<BenchServer> {
  const child = new Deno.Command(command, {
    args,
    env,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  // Keep the last few KiB of stderr for error messages; drain it so the child never blocks.
  let log = "";
  const drained = (async () => {
    for await (const text of child.stderr.pipeThrough(new TextDecoderStream())) {
      log = (log + text).slice(-4096);
    }
  })().catch(() => {});
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
    }, 5000);
    await child.status;
    clearTimeout(timer);
    await drained;
  };
  const deadline = Date.now() + 30_000;
  while (true) {
    try {
      const response = await fetch(`${url}/v2/`);
      await response.body?.cancel();
      if (response.status === 200) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${name} did not start on ${url}: ${log}`);
    }
    // Polled often: start to first answer is measured from here (bench/growth.ts).
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return { name, url, pid: child.pid, dataDir, stop };
}

/**
 * Write and remove a scratch file of `size` bytes, so the pages the next writer fills are ones the
 * kernel just used: on this VM memory left free for a while goes back to the host, and touching it
 * again costs the writer's kernel time (a 1 GiB `dd` into a new file: ~1.3–1.6 s of system time
 * cold, ~0.2 s warm). Without it, whoever writes first after a pause pays that.
 */
export async function warmMemory(path: string, size: number): Promise<void> {
  const piece = new Uint8Array(1 << 20);
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    for (let written = 0; written < size; written += piece.length) {
      const part = piece.subarray(0, Math.min(piece.length, size - written));
      for (let done = 0; done < part.length;) done += await file.write(part.subarray(done));
    }
  } finally {
    file.close();
  }
  await Deno.remove(path);
}

/** Write `mib` MiB of random-looking bytes (each MiB different) to `path`; returns its digest. */
export async function writeTestBlob(path: string, mib: number): Promise<string> {
  const hash = createHash("sha256");
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    const buffer = new Uint8Array(1 << 20);
    for (let i = 0; i < mib; i++) {
      crypto.getRandomValues(buffer.subarray(0, 65536));
      for (let at = 65536; at < buffer.length; at += 65536) buffer.copyWithin(at, 0, 65536);
      buffer[0] = i & 255;
      hash.update(buffer);
      for (let done = 0; done < buffer.length;) done += await file.write(buffer.subarray(done));
    }
  } finally {
    file.close();
  }
  return `sha256:${hash.digest("hex")}`;
}
