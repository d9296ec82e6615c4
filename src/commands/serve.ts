/**
 * `berth serve`: read the config file, `REGISTRY_*` environment and flags into a config, build the
 * app, serve until SIGTERM or SIGINT, then drain: answer new requests 503, let in-flight requests
 * finish within the drain timeout, then abort the writes still running (an upload is trimmed to its
 * last complete chunk, or keeps a prefix of its bytes, and resumes), close the listener and exit.
 *
 * @module
 */
import { createApp } from "../app.ts";
import { type Config, type GcConfig, parseAddr } from "../config.ts";
import {
  ConfigError,
  loadConfig,
  type LoadedConfig,
  parseDuration,
  parseSize,
} from "../config_file.ts";
import { consoleSink, createLogger } from "../ops/log.ts";
import { applyAuthFlag, AUTH_USAGE, checkAuthConfig, checkAuthFiles } from "./serve_auth.ts";
import { UsageError } from "./usage_error.ts";
import { DENO_VERSION } from "../version.ts";

/** Help text of `serve`. */
export const SERVE_USAGE = `Usage: berth serve [CONFIG_FILE] [flags]

Run the registry. Settings come from the distribution-style YAML config file (if any), then
REGISTRY_* environment variables (e.g. REGISTRY_STORAGE_DELETE_ENABLED=false), then flags.

Flags:
  --config FILE          YAML config file (same as the CONFIG_FILE argument)
  --addr HOST:PORT       listen address (default 0.0.0.0:5000; http.addr)
  --data DIR             data directory (default ./data; storage.filesystem.rootdirectory)
  --read-only            refuse every write (storage.maintenance.readonly.enabled)
  --log-level LEVEL      error, warn, info or debug (log.level)
  --drain-timeout DUR    on SIGTERM/SIGINT, time in-flight requests get, e.g. 30s (default 10s;
                         http.draintimeout)
  --debug-addr HOST:PORT also serve /metrics and /healthz here (http.debug.addr)
  --max-manifest SIZE    largest manifest accepted (default 4MiB; limits.maxmanifestbytes)
  --manifest-cache SIZE  memory budget of the manifest cache, 0 for none (default 64MiB;
                         limits.manifestcachebytes)
  --gc-interval DUR      run garbage collection this often, 0 for never (default 24h;
                         storage.maintenance.gc.interval)
  --gc-grace DUR         never collect blobs younger than this (default 1h;
                         storage.maintenance.gc.graceperiod)
  -h, --help             show this text

${AUTH_USAGE}

Endpoints: /v2/ (the OCI distribution API), /healthz, /metrics.
Exit codes: 0 stopped by a signal, 1 failed to start or run (bad config, port taken), 2 usage.`;

/** What the `serve` arguments say: an optional config file and flag overrides. */
export interface ServeArgs {
  /** The config file, when given. */
  file?: string;
  /** Overrides from flags. */
  flags: Partial<Config>;
  /** Garbage collection settings from flags. */
  gc: Partial<GcConfig>;
}

/** Parse `serve` arguments. Throws {@link UsageError}. */
export function parseServeArgs(args: string[]): ServeArgs {
  const out: ServeArgs = { flags: {}, gc: {} };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const value = () => {
      const v = eq > 0 ? arg.slice(eq + 1) : args[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    const duration = () => {
      const text = value();
      const ms = parseDuration(text);
      if (ms === undefined) throw new UsageError(`${flag}: not a duration: "${text}"`);
      return ms;
    };
    const size = () => {
      const text = value();
      const bytes = parseSize(text);
      if (bytes === undefined) throw new UsageError(`${flag}: not a size: "${text}"`);
      return bytes;
    };
    if (flag === "--config") out.file = value();
    else if (flag === "--addr") out.flags.addr = value();
    else if (flag === "--data") out.flags.dataDir = value();
    else if (flag === "--read-only") out.flags.readOnly = true;
    else if (flag === "--log-level") {
      const level = value();
      if (!["error", "warn", "info", "debug"].includes(level)) {
        throw new UsageError(`--log-level: expected error, warn, info or debug, got "${level}"`);
      }
      out.flags.logLevel = level as Config["logLevel"];
    } else if (flag === "--drain-timeout") out.flags.drainTimeoutMs = duration();
    else if (flag === "--debug-addr") out.flags.debugAddr = value();
    else if (flag === "--max-manifest") out.flags.maxManifestBytes = size();
    else if (flag === "--manifest-cache") out.flags.manifestCacheBytes = size();
    else if (flag === "--gc-interval") out.gc.intervalMs = duration();
    else if (flag === "--gc-grace") out.gc.gracePeriodMs = duration();
    else if (!arg.startsWith("-") && out.file === undefined) out.file = arg;
    else if (!applyAuthFlag(out.flags, flag, value)) {
      throw new UsageError(`unknown argument ${arg}`);
    }
  }
  for (const [flag, addr] of [["--addr", out.flags.addr], ["--debug-addr", out.flags.debugAddr]]) {
    if (addr === undefined) continue;
    try {
      parseAddr(addr);
    } catch (error) {
      throw new UsageError(`${flag}: ${(error as Error).message}`);
    }
  }
  return out;
}

/** Load the configuration `serve` would run with (file, environment, flags). */
export async function loadServeConfig(
  args: string[],
  env: Record<string, string>,
): Promise<LoadedConfig> {
  const { file, flags, gc } = parseServeArgs(args);
  return await loadConfig(file, { env, flags, gcFlags: gc });
}

/** The configuration `serve` would run with, checked (a realm without a file, half a TLS pair). */
export async function serveConfig(
  args: string[],
  env: Record<string, string>,
): Promise<LoadedConfig> {
  const loaded = await loadServeConfig(args, env);
  try {
    checkAuthConfig(loaded.config);
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
  return loaded;
}

/** Run the registry until a signal stops it; returns the exit code. */
export async function serveCommand(args: string[]): Promise<number> {
  const loaded = await serveConfig(args, Deno.env.toObject());
  const { config } = loaded;
  const log = createLogger(config.logLevel, consoleSink);
  for (const warning of loaded.warnings) log.log("warn", `config: ${warning}`);
  if (Deno.version.deno !== DENO_VERSION) {
    log.log(
      "warn",
      `Deno ${Deno.version.deno}: berth runs on Deno ${DENO_VERSION}; 2.8.3 to 2.9.x ` +
        "freeze on fast chunked uploads (docs/chunked_uploads.md)",
    );
  }
  checkAuthFiles(config);
  if (config.storage === "filesystem") {
    try {
      await Deno.mkdir(config.dataDir, { recursive: true });
    } catch (error) {
      throw new ConfigError(`cannot create data directory ${config.dataDir}: ${error}`);
    }
  }
  let tls: { cert: string; key: string } | undefined;
  if (config.tls) {
    try {
      tls = {
        cert: await Deno.readTextFile(config.tls.certificate),
        key: await Deno.readTextFile(config.tls.key),
      };
    } catch (error) {
      throw new ConfigError(`http.tls: ${(error as Error).message}`);
    }
  }
  const app = createApp(config);
  const { hostname, port } = parseAddr(config.addr);
  const server = Deno.serve({
    hostname,
    port,
    ...tls,
    onListen: (addr) =>
      log.log("info", "listening", {
        addr: `${addr.hostname}:${addr.port}`,
        data: config.storage === "memory" ? "memory" : config.dataDir,
        tls: tls !== undefined,
      }),
  }, app.handler);

  const { promise: signalled, resolve: signal } = Promise.withResolvers<Deno.Signal>();
  let stopping = false;
  const stop = (name: Deno.Signal) => {
    if (stopping) {
      log.log("warn", `second ${name}: exiting now`);
      Deno.exit(1);
    }
    stopping = true;
    signal(name);
  };
  const onTerm = () => stop("SIGTERM");
  const onInt = () => stop("SIGINT");
  Deno.addSignalListener("SIGTERM", onTerm);
  Deno.addSignalListener("SIGINT", onInt);
  const timers: ReturnType<typeof setTimeout>[] = [];
  const delay = (ms: number) =>
    new Promise<"timeout">((resolve) => timers.push(setTimeout(() => resolve("timeout"), ms)));

  // Deno's server.shutdown() cuts request bodies still arriving, so drain first: new requests
  // get 503, in-flight ones finish (or their writes are aborted at the deadline), then shut down.
  let drained = true;
  const stopped = signalled.then(async (name) => {
    log.log("info", "shutting down", { signal: name, drainTimeoutMs: config.drainTimeoutMs });
    app.ops.startDrain();
    if (await Promise.race([app.ops.idle(), delay(config.drainTimeoutMs)]) === "timeout") {
      drained = false;
      log.log("warn", "drain timeout: aborting in-flight requests");
      // Chunked uploads are aborted (trimmed to their last chunk); the rest are cut by the exit
      // and keep the prefix on disk. Both resume; no blob is ever torn (rename after verify).
      app.registry.uploads.stopWrites();
      app.ops.abortWrites();
      if (await Promise.race([app.ops.idle(), delay(1_000)]) === "timeout") {
        log.log("warn", "requests still open after the drain timeout");
      }
    }
    await Promise.race([server.shutdown(), delay(1_000)]);
  });
  await Promise.race([server.finished, stopped]);
  for (const timer of timers) clearTimeout(timer);
  Deno.removeSignalListener("SIGTERM", onTerm);
  Deno.removeSignalListener("SIGINT", onInt);
  await app.close();
  log.log("info", "stopped", { drained });
  return 0;
}
