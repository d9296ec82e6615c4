/**
 * `createApp(config)`: builds the store, the services and the router, and returns the request
 * handler. This is the one place where errors become responses.
 *
 * @module
 */
import { createAccessControl } from "./auth/access_control.ts";
import type { Config } from "./config.ts";
import { RegistryError } from "./errors.ts";
import { clientOf, RequestLimits } from "./http/limits.ts";
import { buildRouter } from "./http/routes.ts";
import { createLogger, type LogSink } from "./ops/log.ts";
import { createOps, type Handler, type Ops } from "./ops/ops.ts";
import { createRegistry, type Registry } from "./services/registry.ts";
import { FsStore } from "./storage/fs/fs_store.ts";
import { MemoryStore } from "./storage/memory/memory_store.ts";
import type { Store } from "./storage/store.ts";
import { StorageUnavailable } from "./storage/unavailable.ts";

/** Headers on every response. */
const COMMON_HEADERS = { "Docker-Distribution-API-Version": "registry/2.0" };

/** A built registry application. */
export interface App {
  /** Answers one request (request ids, access logs, metrics, `/healthz`, `/metrics`; `info` from
   * `Deno.serve` tells the client, for per-client limits). */
  handler: Handler;
  /** Metrics, health and the shutdown drain signal. */
  ops: Ops;
  /** The services (for admin commands and tests). */
  registry: Registry;
  /** Stops background work. */
  close(): Promise<void>;
}

/** Options of {@link createApp}. */
export interface AppOptions {
  /** Use this store instead of the one the config names. */
  store?: Store;
  /** Where unexpected errors are reported (defaults to the log). */
  logError?: (message: string, fields: Record<string, unknown>) => void;
  /** Where log records (access log, warnings) go; default JSON lines on stdout/stderr. */
  log?: LogSink;
}

/** Build the store a config names. */
export function createStore(config: Config): Store {
  if (config.storage === "s3") {
    throw new Error("storage.s3: the S3 driver is not wired to the layout yet");
  }
  return config.storage === "memory" ? new MemoryStore() : new FsStore(config.dataDir);
}

/** Build a registry application from a configuration. */
export function createApp(config: Config, options: AppOptions = {}): App {
  const store = options.store ?? createStore(config);
  const logger = createLogger(config.logLevel, options.log);
  const registry = createRegistry(
    config,
    store,
    (level, msg, fields) => logger.log(level, msg, fields),
  );
  registry.maintenance.start();
  // Auth and limits: hooks around every routed request (src/auth/, src/http/limits.ts).
  const access = createAccessControl(config.auth, {
    log: (level, msg, fields) => logger.log(level, msg, fields),
  });
  if (access) registry.authorizer = access;
  const limits = new RequestLimits(config.limits, registry.uploads);
  const router = buildRouter(registry);
  const ops = createOps(config, store, logger);
  const logError = options.logError ?? ((msg, fields) => logger.log("error", msg, fields));

  const dispatch = async (request: Request, client: string): Promise<Response> => {
    const url = new URL(request.url);
    const own = await access?.intercept(request, url, client);
    if (own) return own;
    const match = router.match(request.method, url);
    if (match.kind === "none") {
      throw new RegistryError("NAME_UNKNOWN", { path: url.pathname.slice(0, 300) }, {
        status: 404,
        message: "not found",
      });
    }
    ops.label(request, match.label);
    if (match.kind === "method") {
      throw new RegistryError("UNSUPPORTED", { method: request.method }, {
        status: 405,
        message: `method ${request.method} not allowed here`,
        headers: { Allow: match.allowed.join(", ") },
      });
    }
    if (config.readOnly && request.method !== "GET" && request.method !== "HEAD") {
      throw new RegistryError("UNSUPPORTED", null, {
        message: "the registry is in read-only mode",
      });
    }
    let ctx = limits.admit({ request, url, params: match.params }, client);
    try {
      if (access) ctx = await access.check(ctx, client);
      return await match.handler(ctx);
    } finally {
      // A body the handler left unread (or half read on an error) is released so the connection
      // can end; on a body already read to the end this does nothing.
      ctx.request.body?.cancel().catch(() => {});
    }
  };

  const handler = async (
    request: Request,
    info?: { remoteAddr?: Deno.Addr },
  ): Promise<Response> => {
    let response: Response;
    try {
      response = await dispatch(request, clientOf(info));
    } catch (error) {
      await request.body?.cancel().catch(() => {});
      response = toRegistryError(error, request).toResponse(request.method);
    }
    for (const [key, value] of Object.entries(COMMON_HEADERS)) response.headers.set(key, value);
    // Deno 2.8's server gzips compressible bodies (JSON, manifests) when the client accepts it, and
    // drops the Content-Length set here: registry bytes go out exactly as stored.
    const cache = response.headers.get("Cache-Control");
    response.headers.set("Cache-Control", cache ? `${cache}, no-transform` : "no-transform");
    limits.settle(request, response);
    return response;
  };

  /** A thrown value as a registry error: unexpected ones are logged and become 500 `UNKNOWN`. */
  const toRegistryError = (error: unknown, request: Request): RegistryError => {
    if (error instanceof RegistryError) return error;
    if (error instanceof StorageUnavailable) {
      ops.metrics.storageError();
      return new RegistryError("UNAVAILABLE", null, {
        message: "the storage backend is unreachable; try again",
        headers: { "Retry-After": "5" },
      });
    }
    const requestId = ops.requestId(request) ?? crypto.randomUUID();
    if (!request.signal.aborted) {
      ops.metrics.storageError();
      logError("unexpected error", {
        requestId,
        method: request.method,
        path: new URL(request.url).pathname,
        error: error instanceof Error ? (error.stack ?? error.message) : String(error),
      });
    }
    return new RegistryError("UNKNOWN", { requestId });
  };

  const close = async () => {
    limits.close();
    access?.close();
    await registry.maintenance.close();
    store.close();
  };
  return { handler: ops.wrap(handler), ops, registry, close };
}
