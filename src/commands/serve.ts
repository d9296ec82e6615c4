/**
 * `berth serve`: read the config file, `REGISTRY_*` environment and flags into a config, build the
 * app, serve until SIGTERM or SIGINT, then drain: answer new requests 503, let in-flight requests
 * finish within the drain timeout, then abort the writes still running (an upload is trimmed to its
 * last complete chunk, or keeps a prefix of its bytes, and resumes), close the listener and exit.
 *
 * @module
 */
import { createApp } from "../app.ts";
import { RegistryError } from "../errors.ts";
import { DEFAULT_CONNECTION_LIMITS } from "../http/connection_limits.ts";
import { newContext } from "../http/context.ts";
import type { Ops } from "../ops/ops.ts";
import { createStore } from "../storage/open_store.ts";
import { Arrivals } from "../http/arrivals.ts";
import type { Store } from "../storage/store.ts";
import { type Config, DEFAULT_LIMITS, type GcConfig, parseAddr } from "../config.ts";
import { checkHealth } from "../ops/health.ts";
import {
  ConfigError,
  loadConfig,
  type LoadedConfig,
  parseDuration,
  parseSize,
  parseTrustedProxies,
} from "../config_file.ts";
import { type HttpServer, type RequestHandler, serveRequests } from "../http/server.ts";
import type { ConnectionLimits } from "../http/connection_limits.ts";
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
  --trusted-proxies LIST proxies (addresses, CIDR ranges) whose X-Forwarded-For names the client
                         for per-client limits (default none; http.trustedproxies)
  --header-timeout DUR   close a connection whose request headers take longer (default 20s;
                         0: no header/idle/write timeouts nor connection cap;
                         http.headertimeout)
  --idle-timeout DUR     close a keep-alive connection idle this long (default 60s;
                         http.idletimeout)
  --write-timeout DUR    close a connection whose client reads nothing of an answer this long
                         (default 60s; http.writetimeout)
  --max-connections N    most connections open at once (default 1024; http.maxconnections)
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
    const count = () => {
      const text = value();
      if (!/^\d{1,9}$/.test(text)) throw new UsageError(`${flag}: not a count: "${text}"`);
      return Number(text);
    };
    const trustedProxies = (text: string) => {
      try {
        return parseTrustedProxies(text);
      } catch (error) {
        throw new UsageError(`${flag}: ${(error as Error).message.replace(/^http\.\w+: /, "")}`);
      }
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
    else if (flag === "--trusted-proxies") out.flags.trustedProxies = trustedProxies(value());
    else if (flag === "--header-timeout") out.flags.headerTimeoutMs = duration();
    else if (flag === "--idle-timeout") out.flags.idleTimeoutMs = duration();
    else if (flag === "--write-timeout") out.flags.writeTimeoutMs = duration();
    else if (flag === "--max-connections") out.flags.maxConnections = count();
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

/** The auth mode, for the startup line. */
function authMode(config: Config): string {
  const { htpasswd, token } = config.auth ?? {};
  if (htpasswd && token) return "token (issued by berth to htpasswd users)";
  if (token) return "token (external issuer)";
  if (htpasswd) return "htpasswd";
  return "none";
}

/** What the startup line tells: address, storage, auth, modes and limits. */
export function startupFields(config: Config, addr: string): Record<string, unknown> {
  const limits = { ...DEFAULT_LIMITS, ...config.limits };
  return {
    addr,
    ...(config.debugAddr !== undefined && { debugAddr: config.debugAddr }),
    storage: config.storage === "memory"
      ? "memory"
      : config.storage === "s3"
      ? `s3:${config.s3?.bucket ?? ""}`
      : `filesystem:${config.dataDir}`,
    tls: config.tls !== undefined,
    auth: authMode(config),
    readOnly: config.readOnly,
    deletes: config.deleteEnabled,
    limits: {
      maxBodyBytes: limits.maxBodyBytes,
      maxHeaderBytes: limits.maxHeaderBytes,
      maxManifestBytes: config.maxManifestBytes,
      maxUploadsPerClient: limits.maxUploadsPerClient,
      uploadSessionTimeoutMs: limits.uploadSessionTimeoutMs,
      bodyIdleTimeoutMs: limits.bodyIdleTimeoutMs,
      manifestCacheBytes: config.manifestCacheBytes,
      headerTimeoutMs: config.headerTimeoutMs ?? DEFAULT_CONNECTION_LIMITS.headerTimeoutMs,
      idleTimeoutMs: config.idleTimeoutMs ?? DEFAULT_CONNECTION_LIMITS.idleTimeoutMs,
      writeTimeoutMs: config.writeTimeoutMs ?? DEFAULT_CONNECTION_LIMITS.writeTimeoutMs,
      maxConnections: config.maxConnections ?? DEFAULT_CONNECTION_LIMITS.maxConnections,
      drainTimeoutMs: config.drainTimeoutMs,
    },
    trustedProxies: config.trustedProxies?.length ?? 0,
    gc: config.gc.intervalMs > 0
      ? { intervalMs: config.gc.intervalMs, gracePeriodMs: config.gc.gracePeriodMs }
      : "off",
  };
}

/**
 * Refuse a data directory berth could not use: not a directory, or (unless read-only) one that
 * does not take a durable write into `store`. Creates it when missing.
 */
export async function checkDataDir(config: Config, store: Store): Promise<void> {
  if (config.storage !== "filesystem") return;
  const where = `storage.filesystem.rootdirectory (--data) ${config.dataDir}`;
  const info = await Deno.stat(config.dataDir).catch(() => undefined);
  if (info && !info.isDirectory) throw new ConfigError(`${where}: not a directory`);
  try {
    await Deno.mkdir(config.dataDir, { recursive: true });
  } catch (error) {
    throw new ConfigError(`${where}: cannot create it: ${reason(error)}`);
  }
  const report = await checkHealth(config, store);
  if (report.status === "ok") return;
  const problem = Object.entries(report.checks).find(([, result]) => result !== "ok");
  const [check, result] = problem ?? ["storage", "unusable"];
  const what = check === "writable" ? "not writable" : "not usable";
  throw new ConfigError(`${where}: ${what}: ${result.replace(/^(failed|unreachable): /, "")}`);
}

/** An OS error's message without Deno's decoration. */
function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Start an HTTP server, turning a failure into one line naming the address and setting.
 */
function listen(
  options:
    & { hostname: string; port: number; onListen?: (addr: Deno.NetAddr) => void }
    & Partial<
      Deno.TlsCertifiedKeyPem & ConnectionLimits & { maxHeadBytes: number; arrivals: Arrivals }
    >,
  handler: RequestHandler,
  setting: string,
): HttpServer {
  const addr = `${options.hostname}:${options.port}`;
  try {
    return serveRequests(options, handler);
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) {
      throw new ConfigError(`${setting} ${addr}: address already in use`);
    }
    if (error instanceof Deno.errors.AddrNotAvailable) {
      throw new ConfigError(`${setting} ${addr}: not an address of this machine`);
    }
    if (error instanceof Deno.errors.PermissionDenied) {
      throw new ConfigError(`${setting} ${addr}: permission denied (ports below 1024 need root)`);
    }
    const message = reason(error);
    if (options.cert !== undefined) {
      if (/KeyMismatch|not be consistent/i.test(message)) {
        throw new ConfigError("http.tls: the certificate and the key do not match");
      }
      throw new ConfigError(`http.tls: certificate or key not usable: ${message}`);
    }
    throw new ConfigError(`${setting} ${addr}: cannot listen: ${message}`);
  }
}

/** Read the TLS files the config names. */
async function readTls(config: Config): Promise<Deno.TlsCertifiedKeyPem | undefined> {
  if (!config.tls) return undefined;
  const read = async (key: string, path: string) => {
    try {
      return await Deno.readTextFile(path);
    } catch (error) {
      throw new ConfigError(`${key} ${path}: ${reason(error)}`);
    }
  };
  return {
    cert: await read("http.tls.certificate (--tls-cert)", config.tls.certificate),
    key: await read("http.tls.key (--tls-key)", config.tls.key),
  };
}

/** The debug address's handler: `/healthz` and `/metrics`, 404 for everything else. */
function opsOnly(ops: Ops): RequestHandler {
  return async (request) => {
    const ctx = newContext(request, ops.requestId(request), "debug");
    try {
      return (await ops.endpoint(ctx)) ?? new Response("not found\n", { status: 404 });
    } catch (error) {
      if (error instanceof RegistryError) return error.toResponse(request.method);
      throw error;
    }
  };
}

/** Run the registry until a signal stops it; returns the exit code. */
export async function serveCommand(args: string[]): Promise<number> {
  const loaded = await serveConfig(args, Deno.env.toObject());
  const { config } = loaded;
  const log = createLogger(config.logLevel, consoleSink);
  checkAuthFiles(config);
  // The client reads of the main server: requests that came in together share one read of the
  // store's tag epoch (src/http/arrivals.ts).
  const arrivals = new Arrivals();
  const store = createStore(config, arrivals);
  let app;
  let tls: Deno.TlsCertifiedKeyPem | undefined;
  try {
    await checkDataDir(config, store);
    tls = await readTls(config);
    try {
      app = createApp(config, { store });
    } catch (error) {
      throw new ConfigError(`cannot start: ${reason(error)}`);
    }
  } catch (error) {
    store.close();
    throw error;
  }
  const servers: HttpServer[] = [];
  try {
    const { hostname, port } = parseAddr(config.addr);
    const { promise: bound, resolve: onListen } = Promise.withResolvers<Deno.NetAddr>();
    // A header timeout of 0 (a reverse proxy in front does this job): no header or idle
    // timeouts, no connection cap.
    const connections: Partial<ConnectionLimits> = config.headerTimeoutMs === 0
      ? { headerTimeoutMs: 0, idleTimeoutMs: 0, writeTimeoutMs: 0, maxConnections: 0 }
      : {
        ...(config.headerTimeoutMs !== undefined && { headerTimeoutMs: config.headerTimeoutMs }),
        ...(config.idleTimeoutMs !== undefined && { idleTimeoutMs: config.idleTimeoutMs }),
        ...(config.writeTimeoutMs !== undefined && { writeTimeoutMs: config.writeTimeoutMs }),
        ...(config.maxConnections !== undefined && { maxConnections: config.maxConnections }),
      };
    // Heads up to the header limit reach the pipeline, which answers 431 in the registry's words.
    const maxHeadBytes = ({ ...DEFAULT_LIMITS, ...config.limits }).maxHeaderBytes + 16 * 1024;
    servers.push(
      listen(
        { hostname, port, ...tls, onListen, ...connections, maxHeadBytes, arrivals },
        app.serve,
        "http.addr (--addr)",
      ),
    );
    if (config.debugAddr !== undefined) {
      const debug = parseAddr(config.debugAddr);
      servers.push(
        listen(
          { ...debug, onListen: () => {} },
          opsOnly(app.ops),
          "http.debug.addr (--debug-addr)",
        ),
      );
    }
    const addr = await bound;
    const debugAddr = servers[1]?.addr;
    log.log("info", "listening", {
      ...startupFields(config, `${addr.hostname}:${addr.port}`),
      ...(debugAddr && { debugAddr: `${debugAddr.hostname}:${debugAddr.port}` }),
    });
    // After the start succeeded: a failed start says one thing, its cause.
    for (const warning of loaded.warnings) log.log("warn", `config: ${warning}`);
    if (Deno.version.deno !== DENO_VERSION) {
      log.log(
        "warn",
        `Deno ${Deno.version.deno}: berth is tested on Deno ${DENO_VERSION} ` +
          "(docs/chunked_uploads.md)",
      );
    }
  } catch (error) {
    for (const server of servers) await server.shutdown();
    await app.close();
    throw error;
  }
  const server = servers[0]!;

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
  const until = (at: number) =>
    new Promise<"timeout">((resolve) =>
      timers.push(setTimeout(() => resolve("timeout"), Math.max(0, at - performance.now())))
    );

  // Drain first: new requests get 503, in-flight ones finish, writes still running shortly before
  // the deadline are aborted (trimmed, resumable); then the servers close their connections, and
  // the process exits by the deadline whatever is still open.
  let drained = true;
  let deadline = Infinity;
  const stopped = signalled.then(async (name) => {
    deadline = performance.now() + config.drainTimeoutMs;
    log.log("info", "shutting down", { signal: name, drainTimeoutMs: config.drainTimeoutMs });
    app.ops.startDrain();
    const margin = Math.min(500, config.drainTimeoutMs / 4);
    if (await Promise.race([app.ops.idle(), until(deadline - margin)]) === "timeout") {
      drained = false;
      log.log("warn", "drain timeout: aborting in-flight writes");
      // Chunked uploads are aborted (trimmed to their last chunk); the rest are cut by the exit
      // and keep the prefix on disk. Both resume; no blob is ever torn (rename after verify).
      app.registry.uploads.stopWrites();
      app.ops.abortWrites();
      if (await Promise.race([app.ops.idle(), until(deadline)]) === "timeout") {
        log.log("warn", "requests still open at the drain deadline: closing them");
      }
    }
    await Promise.race([Promise.all(servers.map((s) => s.shutdown())), until(deadline)]);
  });
  await Promise.race([server.finished, stopped]);
  // Background work (a collection under way) gets what is left of the deadline (at least a
  // moment); anything it leaves is crash-safe.
  const closeBy = Math.max(Number.isFinite(deadline) ? deadline : 0, performance.now() + 250);
  await Promise.race([app.close(), until(closeBy)]);
  for (const timer of timers) clearTimeout(timer);
  Deno.removeSignalListener("SIGTERM", onTerm);
  Deno.removeSignalListener("SIGINT", onInt);
  log.log("info", "stopped", { drained });
  return 0;
}
