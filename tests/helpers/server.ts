/**
 * Test servers: berth on 127.0.0.1 with an ephemeral port and a fresh temporary data directory.
 *
 * In-process by default (fast). With `BERTH_TEST_COMMAND` set (e.g. `deno run -A dist/berth.js`),
 * every server is that command run as a child process instead, so the shipped bundle passes the
 * same tests.
 *
 * @module
 */
import { createApp } from "../../src/app.ts";
import { type Config, makeConfig } from "../../src/config.ts";
import { configToEnv } from "../../src/config_file.ts";
import { Arrivals } from "../../src/http/arrivals.ts";
import { serveRequests } from "../../src/http/server.ts";
import { createStore } from "../../src/storage/open_store.ts";
import { S3_BUCKET_FILE } from "./registry.ts";
import { s3Config, tempBucket } from "./s3.ts";

/** A running test server. */
export interface TestServer {
  /** Base URL, `http://127.0.0.1:<port>`. */
  url: string;
  /** `127.0.0.1:<port>`, for clients that want a host. */
  host: string;
  /** The data directory. */
  dataDir: string;
  /** Stop the server; removes the data directory unless it was given. */
  close(): Promise<void>;
}

/** Options of {@link startServer}. */
export interface StartOptions {
  /** Use this data directory (kept on close); default: a fresh temporary one (removed). */
  dataDir?: string;
  /** Configuration overrides. */
  config?: Partial<Config>;
  /** Force a child process even without `BERTH_TEST_COMMAND` (for kill tests). */
  process?: boolean;
}

/** Start berth for a test. */
export async function startServer(options: StartOptions = {}): Promise<TestServer> {
  const ownDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? await Deno.makeTempDir({ prefix: "berth-test-" });
  // BERTH_TEST_STORAGE=s3: servers that name no storage keep their data in the test S3 store: a
  // fresh bucket, or, for a data directory the test gives (restarts), one bucket per directory
  // (it stays until scripts/ceph_down.sh).
  const onS3 = Deno.env.get("BERTH_TEST_STORAGE") === "s3" && !options.config?.storage;
  const bucket = onS3 ? await dirBucket(dataDir) : undefined;
  if (bucket) {
    options = { ...options, config: { ...options.config, ...s3TestConfig(bucket.name) } };
    await Deno.writeTextFile(`${dataDir}/${S3_BUCKET_FILE}`, bucket.name);
  }
  const cleanup = async () => {
    if (ownDir) await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    if (ownDir) await bucket?.remove();
  };
  // Child mode when asked, or for every server under BERTH_TEST_COMMAND whose config overrides
  // have REGISTRY_* variables (the others, e.g. maxManifestBytes, stay in-process).
  const env = configToEnv(options.config ?? {});
  if (options.process || (Deno.env.get("BERTH_TEST_COMMAND") && env)) {
    if (!env) throw new Error("these config overrides cannot be given to a child process");
    const child = await spawnServer({ dataDir, env });
    return {
      ...child,
      close: async () => {
        await child.stop("SIGTERM");
        await cleanup();
      },
    };
  }
  const config = makeConfig({ ...options.config, dataDir, addr: "127.0.0.1:0" });
  // Wired as `berth serve` wires them: the server's client reads pace the store's tag epoch.
  const arrivals = new Arrivals();
  const store = createStore(config, arrivals);
  const app = createApp(config, { logError: () => {}, log: () => {}, store });
  const { promise: listening, resolve } = Promise.withResolvers<number>();
  const server = serveRequests(
    { hostname: "127.0.0.1", port: 0, onListen: ({ port }) => resolve(port), arrivals },
    app.serve,
  );
  const port = await listening;
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    dataDir,
    close: async () => {
      await server.shutdown();
      await app.close();
      await cleanup();
    },
  };
}

/** The bucket standing for a data directory (created when missing; `remove` empties and drops it). */
async function dirBucket(dataDir: string): Promise<{ name: string; remove(): Promise<void> }> {
  const hash = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(dataDir)),
  );
  const hex = [...hash.slice(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join("");
  return await tempBucket(`berth-test-dir-${hex}`);
}

function s3TestConfig(bucket: string): Partial<Config> {
  // Blob GETs stream (the suite checks registry headers); redirects have their own tests.
  return { storage: "s3", s3: s3Config(bucket, { redirect: false }) };
}

/** A berth child process. */
export interface ChildServer {
  /** Base URL. */
  url: string;
  /** `127.0.0.1:<port>`. */
  host: string;
  /** The data directory. */
  dataDir: string;
  /** The process. */
  process: Deno.ChildProcess;
  /** Send a signal and wait for the exit; returns the exit status. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
}

/** The command that runs berth: `BERTH_TEST_COMMAND`, else `deno run <flags> main.ts`. */
export function berthCommand(): string[] {
  const custom = Deno.env.get("BERTH_TEST_COMMAND");
  if (custom) return custom.split(/\s+/).filter(Boolean);
  const main = new URL("../../main.ts", import.meta.url).pathname;
  return [
    Deno.execPath(),
    "run",
    "--allow-net",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    main,
  ];
}

/** Start berth as a child process on an ephemeral port (its log line tells the port). */
export async function spawnServer(
  options: { dataDir: string; args?: string[]; env?: Record<string, string> },
): Promise<ChildServer> {
  const [cmd, ...args] = berthCommand();
  const process = new Deno.Command(cmd!, {
    args: [
      ...args,
      "serve",
      "--addr",
      "127.0.0.1:0",
      "--data",
      options.dataDir,
      ...(options.args ?? []),
    ],
    env: options.env ?? {},
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = process.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  let port: number | undefined;
  const deadline = setTimeout(() => reader.cancel(), 30_000);
  while (port === undefined) {
    const { done, value } = await reader.read();
    if (done) break;
    buffered += value;
    const match = /"addr":"[^"]*:(\d+)"/.exec(buffered);
    if (match) port = Number(match[1]);
  }
  clearTimeout(deadline);
  if (port === undefined) {
    process.kill("SIGKILL");
    await process.status;
    throw new Error(`berth did not start: ${buffered}`);
  }
  // Keep draining stdout so the child never blocks on a full pipe.
  (async () => {
    try {
      while (!(await reader.read()).done);
    } catch { /* closed */ }
  })();
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    dataDir: options.dataDir,
    process,
    stop: async (signal: Deno.Signal = "SIGTERM") => {
      try {
        process.kill(signal);
      } catch { /* already gone */ }
      return await process.status;
    },
  };
}
