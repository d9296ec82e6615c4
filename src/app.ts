/**
 * `createApp(config)`: builds the store, the services, the router and the request pipeline
 * (src/http/pipeline.ts), and returns the request handler.
 *
 * @module
 */
import { createAccessControl } from "./auth/access_control.ts";
import type { Config } from "./config.ts";
import { RequestLimits } from "./http/limits.ts";
import { createPipeline, type PipelineHandler, type ServeHandler } from "./http/pipeline.ts";
import { toResponse } from "./http/reply.ts";
import { buildRouter } from "./http/routes.ts";
import { createLogger, type LogSink } from "./ops/log.ts";
import { createOps, type Ops } from "./ops/ops.ts";
import { notificationMetrics } from "./services/events.ts";
import { createRegistry, type Registry } from "./services/registry.ts";
import { MirroredBlobs } from "./proxy/blobs.ts";
import { createStore } from "./storage/open_store.ts";
import type { Store } from "./storage/store.ts";

/** A built registry application. */
export interface App {
  /** Answers one request (request ids, access logs, metrics, `/healthz`, `/metrics`; `info` from
   * `Deno.serve` tells the client, for per-client limits). */
  handler: ServeHandler;
  /** The same, for berth's own server: small answers may come as a `Reply`, written as is. */
  serve: PipelineHandler;
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
  registry.events?.start().catch((error) =>
    logger.log("error", "notification queues cannot start", { error: String(error) })
  );
  const access = createAccessControl(config.auth, {
    log: (level, msg, fields) => logger.log(level, msg, fields),
  });
  if (access) registry.authorizer = access;
  const limits = new RequestLimits(config.limits, registry.uploads);
  const ops = createOps(
    config,
    store,
    logger,
    registry.mirrors,
    () => notificationMetrics(registry.events),
  );
  const serve = createPipeline({
    ops,
    router: buildRouter(registry),
    limits,
    access,
    readOnly: config.readOnly,
    trustedProxies: config.trustedProxies ?? [],
    logError: options.logError ?? ((msg, fields) => logger.log("error", msg, fields)),
  });

  const handler: ServeHandler = async (request, info) => toResponse(await serve(request, info));

  const close = async () => {
    limits.close();
    access?.close();
    await registry.maintenance.close();
    if (registry.blobs instanceof MirroredBlobs) await registry.blobs.settle();
    registry.mirrors?.close();
    await registry.events?.close();
    registry.uploads.close();
    store.close();
  };
  return { handler, serve, ops, registry, close };
}
