/**
 * Operations, the pipeline's first and last stages (src/http/pipeline.ts): requests in flight and
 * the drain graceful shutdown uses to stop writes, `/healthz` and `/metrics`, and when a request
 * ends, its `X-Request-Id`, Prometheus metrics and JSON access log line.
 *
 * @module
 */
import { Reply } from "../http/reply.ts";
import type { RequestView } from "../http/request_view.ts";
import type { Config } from "../config.ts";
import { RegistryError } from "../errors.ts";
import type { RequestContext } from "../http/context.ts";
import type { Store } from "../storage/store.ts";
import { checkHealth } from "./health.ts";
import type { Logger } from "./log.ts";
import { BackgroundGauge, Metrics } from "./metrics.ts";
import { concatBytes } from "../bytes.ts";

/** Path of the health endpoint. */
export const HEALTH_PATH = "/healthz";
/** Path of the metrics endpoint. */
export const METRICS_PATH = "/metrics";

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/** Methods counted by name in metrics (others are `OTHER`). */
const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

/** Bodies without a declared length are read whole up to this size, streamed above it. */
const MEASURE_LIMIT = 1024 * 1024;

/**
 * Measure a body without a declared length: returns it whole (with `done` called) when small,
 * else a stream that replays what was read and counts the rest (`done` called at its end).
 */
async function measure(
  body: ReadableStream<Uint8Array>,
  done: (bytes: number) => void,
): Promise<Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array>> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (size <= MEASURE_LIMIT) {
    const { done: end, value } = await reader.read();
    if (end) {
      const whole = concatBytes(chunks, size);
      done(size);
      return whole;
    }
    chunks.push(value);
    size += value.byteLength;
  }
  let finished = false;
  const once = () => {
    if (!finished) done(size);
    finished = true;
  };
  return new ReadableStream<Uint8Array>({
    pull: async (controller) => {
      const next = chunks.shift();
      if (next) return controller.enqueue(next);
      const { done: end, value } = await reader.read();
      if (end) {
        once();
        controller.close();
      } else {
        size += value.byteLength;
        controller.enqueue(value);
      }
    },
    cancel: async (reason) => {
      once();
      await reader.cancel(reason);
    },
  });
}

/** What the pull-through cache adds: its metrics, and the mirror a repository belongs to. */
export interface MirrorReport {
  /** The mirrors' counters in the exposition format. */
  render(): string;
  /** The mirror's label of a repository, or `undefined` for a local one. */
  label(name: string): string | undefined;
}

/** Operations state of one app. */
export interface Ops {
  /** The metrics. */
  metrics: Metrics;
  /**
   * The id of a request that arrives: its valid `X-Request-Id`, else a new one (a random prefix
   * per process and a counter: unique across processes without a random UUID per request).
   */
  requestId(request: RequestView): string;
  /** A request arrived (counts it in flight until {@link finish}). */
  enter(): void;
  /** Whether the registry is draining (new requests get 503 `UNAVAILABLE`). */
  readonly draining: boolean;
  /** Aborts when the shutdown deadline passes: body reads of writes in flight then fail. */
  readonly drainSignal: AbortSignal;
  /** Answer `/healthz` and `/metrics`; `undefined` for every other path. */
  endpoint(ctx: RequestContext): Promise<Response | undefined>;
  /**
   * A request ends with `response`: adds `X-Request-Id`, records metrics and the access log line
   * (when the body is sent, for bodies without a declared length), and stops counting it.
   */
  finish(
    ctx: RequestContext,
    response: Response | Reply,
  ): Response | Reply | Promise<Response | Reply>;
  /** Start draining: new requests get 503 `UNAVAILABLE` with `Connection: close`. */
  startDrain(): void;
  /** Resolves when no request is being handled (bodies read, handlers returned). */
  idle(): Promise<void>;
  /** Abort every in-flight write (the shutdown deadline passed). */
  abortWrites(): void;
}

/** Build the operations layer of an app. */
export function createOps(
  config: Config,
  store: Store,
  log: Logger,
  mirrors?: MirrorReport,
  /** More exposition text (the notification queues' metrics). */
  extraMetrics: () => string = () => "",
): Ops {
  const metrics = new Metrics();
  const idPrefix = `${crypto.randomUUID().slice(0, 13)}-`;
  let idCount = 0;
  const drain = new AbortController();
  let draining = false;
  let active = 0;
  let onIdle: (() => void) | undefined;
  const settle = () => {
    active--;
    if (active > 0) return;
    const wake = onIdle;
    onIdle = undefined;
    wake?.();
  };
  // Counting sessions walks every repository: done in the background, not per scrape.
  const sessions = new BackgroundGauge(async () => {
    let open = 0;
    for (const name of await store.listRepositories()) {
      open += (await store.listUploads(name)).length;
    }
    return open;
  });
  const gauges = { uploadSessions: () => sessions.read() };

  const endpoint = async (ctx: RequestContext): Promise<Response | undefined> => {
    const path = ctx.path;
    if (path !== HEALTH_PATH && path !== METRICS_PATH) return undefined;
    ctx.route = path === HEALTH_PATH ? "healthz" : "metrics";
    const method = ctx.method;
    if (method !== "GET" && method !== "HEAD") {
      throw new RegistryError("METHOD_NOT_ALLOWED", { method }, {
        headers: { Allow: "GET, HEAD" },
      });
    }
    if (path === METRICS_PATH) {
      const text = await metrics.render(gauges) + (mirrors?.render() ?? "") + extraMetrics();
      return new Response(method === "HEAD" ? null : text, {
        headers: { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" },
      });
    }
    const report = await checkHealth(config, store);
    if (report.status !== "ok") {
      metrics.storageError();
      log.log("error", "health check failed", { checks: report.checks });
    }
    return new Response(method === "HEAD" ? null : JSON.stringify(report), {
      status: report.status === "ok" ? 200 : 503,
      headers: { "Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store" },
    });
  };

  /** Record a request that ended with `status` and `bytesOut` body bytes: metrics, access log. */
  const record = (ctx: RequestContext, status: number, bytesOut: number) => {
    const seconds = (performance.now() - ctx.started) / 1000;
    const { route, bytesIn } = ctx;
    const method = METHODS.has(ctx.method) ? ctx.method : "OTHER";
    metrics.observe({ route, method, status, bytesIn, bytesOut, seconds });
    if (!config.accessLog) return;
    log.log("info", "request", {
      requestId: ctx.id,
      method: ctx.method,
      path: ctx.path,
      route,
      status,
      bytesIn,
      bytesOut,
      durationMs: Math.round(seconds * 1e4) / 10,
      ...(ctx.client !== "local" && { remote: ctx.client }),
      ...(ctx.identity?.user !== undefined && { user: ctx.identity.user }),
      ...(mirrors && ctx.params.name && { mirror: mirrors.label(ctx.params.name) }),
      userAgent: ctx.request.headers.get("user-agent") ?? "",
    });
  };

  const finish = (
    ctx: RequestContext,
    given: Response | Reply,
  ): Response | Reply | Promise<Response | Reply> => {
    settle();
    const status = given.status;
    // No handler sets it: `append` skips the scan a `set` makes.
    given.headers.append("X-Request-Id", ctx.id);
    if (given instanceof Reply) {
      record(ctx, status, ctx.method === "HEAD" ? 0 : given.body?.length ?? 0);
      return given;
    }
    // A declared length is taken as given, without touching `response.body`: reading that
    // getter turns a fixed body into a stream, which costs the fast path and keep-alive on
    // HTTP/1.0 (ab -k).
    if (ctx.method === "HEAD") {
      record(ctx, status, 0);
      return given;
    }
    const length = given.headers.get("content-length");
    if (length !== null) record(ctx, status, Number(length) || 0);
    else if (!given.body) record(ctx, status, 0);
    else {
      // No declared length (small JSON bodies): measure it. Bodies up to a limit are read
      // whole and answered with a length (a streamed body would go out chunked); a larger one
      // is counted as it streams.
      return measure(given.body, (bytes) => record(ctx, status, bytes))
        .then((measured) => new Response(measured, given));
    }
    return given;
  };

  return {
    metrics,
    requestId: (request) => {
      const given = request.headers.get("x-request-id");
      return given && REQUEST_ID.test(given) ? given : idPrefix + (++idCount).toString(36);
    },
    enter: () => {
      active++;
      metrics.begin();
    },
    get draining() {
      return draining;
    },
    drainSignal: drain.signal,
    endpoint,
    finish,
    startDrain: () => {
      draining = true;
    },
    idle: () => {
      if (active === 0) return Promise.resolve();
      const { promise, resolve } = Promise.withResolvers<void>();
      const previous = onIdle;
      onIdle = () => {
        previous?.();
        resolve();
      };
      return promise;
    },
    abortWrites: () =>
      drain.abort(
        new RegistryError("UNAVAILABLE", null, { message: "the registry is shutting down" }),
      ),
  };
}
