/**
 * Operations around the registry handler: request ids, JSON access logs, Prometheus metrics,
 * `/healthz` and `/metrics`, and the drain signal graceful shutdown uses to stop writes.
 *
 * @module
 */
import type { Config } from "../config.ts";
import { RegistryError } from "../errors.ts";
import type { Store } from "../storage/store.ts";
import { relayBytes } from "../http/byte_relay.ts";
import { checkHealth } from "./health.ts";
import type { Logger } from "./log.ts";
import { BackgroundGauge, Metrics } from "./metrics.ts";
import { concatBytes } from "../bytes.ts";

/** A request handler with Deno's connection info. */
export type Handler = (request: Request, info?: Deno.ServeHandlerInfo) => Promise<Response>;

/** Path of the health endpoint. */
export const HEALTH_PATH = "/healthz";
/** Path of the metrics endpoint. */
export const METRICS_PATH = "/metrics";

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
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

/**
 * A request body that counts its bytes and fails with `signal`'s reason when it aborts (a pending
 * read fails at once, even while the client is stalled). A byte relay: BYOB reads stay zero-copy.
 */
function guardBody(
  body: ReadableStream<Uint8Array>,
  signal: AbortSignal,
  count: (bytes: number) => void,
): ReadableStream<Uint8Array> {
  let onAbort = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
  });
  aborted.catch(() => {});
  signal.addEventListener("abort", onAbort, { once: true });
  const release = () => signal.removeEventListener("abort", onAbort);
  return relayBytes(body, async (read) => {
    try {
      if (signal.aborted) throw signal.reason;
      const result = await Promise.race([read, aborted]);
      if (result.done) release();
      else count(result.value.byteLength);
      return result;
    } catch (error) {
      release();
      throw error;
    }
  });
}

/** Operations state of one app. */
export interface Ops {
  /** The metrics. */
  metrics: Metrics;
  /** Wrap the registry handler with ids, logs, metrics and the ops endpoints. */
  wrap(inner: Handler): Handler;
  /** The request id given to a request (the one the inner handler sees). */
  requestId(request: Request): string | undefined;
  /**
   * Name the route a request (the one the inner handler sees) was routed to, for metrics and
   * the access log: a fixed set, never repository names. Unrouted requests are `other`.
   */
  label(request: Request, route: string): void;
  /** Start draining: new requests get 503 `UNAVAILABLE` with `Connection: close`. */
  startDrain(): void;
  /** Resolves when no request is being handled (bodies read, handlers returned). */
  idle(): Promise<void>;
  /** Abort every in-flight write (the shutdown deadline passed). */
  abortWrites(): void;
  /** Answer `/healthz` and `/metrics` only, 404 otherwise (the debug address). */
  endpoint(request: Request): Promise<Response>;
}

/** Build the operations layer of an app. */
export function createOps(config: Config, store: Store, log: Logger): Ops {
  const metrics = new Metrics();
  const ids = new WeakMap<Request, string>();
  const routes = new WeakMap<Request, string>();
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

  const opsEndpoint = async (path: string, method: string): Promise<Response | undefined> => {
    if (path !== HEALTH_PATH && path !== METRICS_PATH) return undefined;
    if (method !== "GET" && method !== "HEAD") {
      return new Response(null, { status: 405, headers: { Allow: "GET, HEAD" } });
    }
    if (path === METRICS_PATH) {
      const text = await metrics.render(gauges);
      return new Response(method === "HEAD" ? null : text, {
        headers: { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" },
      });
    }
    const report = await checkHealth(config);
    if (report.status !== "ok") {
      metrics.storageError();
      log.log("error", "health check failed", { checks: report.checks });
    }
    return new Response(method === "HEAD" ? null : JSON.stringify(report), {
      status: report.status === "ok" ? 200 : 503,
      headers: { "Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store" },
    });
  };

  const wrap = (inner: Handler): Handler => {
    return async (request, info) => {
      const started = performance.now();
      metrics.begin();
      const given = request.headers.get("x-request-id");
      const id = given && REQUEST_ID.test(given) ? given : crypto.randomUUID();
      const path = new URL(request.url).pathname;
      const declared = request.headers.get("content-length");
      let counted = Number(declared) || 0;
      let inbound = request;
      // (Methods outside METHODS, e.g. TRACE, cannot be copied into a Request: the router refuses
      // them with 405 and their body is not counted.)
      if (request.body && declared === null && METHODS.has(request.method)) {
        // A chunked body is counted as it streams, and fails when the shutdown deadline passes.
        // (A body of declared length is not wrapped: a stream hop costs upload throughput. At the
        // deadline berth exits under it; the session keeps a prefix of the bytes and resumes.)
        counted = 0;
        const body = guardBody(request.body, drain.signal, (n) => counted += n);
        // Built from parts: copying the request would read its signal, which makes Deno warn.
        inbound = new Request(request.url, {
          method: request.method,
          headers: request.headers,
          body,
          duplex: "half",
        } as RequestInit);
      }
      ids.set(inbound, id);
      let response: Response;
      active++;
      try {
        if (draining) {
          await inbound.body?.cancel().catch(() => {});
          response = new RegistryError("UNAVAILABLE", null, {
            message: "the registry is shutting down",
            headers: { Connection: "close", "Retry-After": "5" },
          }).toResponse(request.method);
        } else response = (await opsEndpoint(path, request.method)) ?? await inner(inbound, info);
      } catch (error) {
        // The inner handler turns errors into responses; this is a last resort.
        metrics.storageError();
        log.log("error", "unexpected error", { requestId: id, error: String(error) });
        response = new Response(null, { status: 500 });
      } finally {
        settle();
      }
      response.headers.set("X-Request-Id", id);
      const route = path === HEALTH_PATH
        ? "healthz"
        : path === METRICS_PATH
        ? "metrics"
        : routes.get(inbound) ?? "other";
      const method = METHODS.has(request.method) ? request.method : "OTHER";
      const finish = (bytesOut: number) => {
        const bytesIn = counted;
        const seconds = (performance.now() - started) / 1000;
        metrics.observe({ route, method, status: response.status, bytesIn, bytesOut, seconds });
        if (!config.accessLog) return;
        const remote = info?.remoteAddr;
        log.log("info", "request", {
          requestId: id,
          method: request.method,
          path,
          route,
          status: response.status,
          bytesIn,
          bytesOut,
          durationMs: Math.round(seconds * 1e4) / 10,
          ...(remote && "hostname" in remote && { remote: remote.hostname }),
          userAgent: request.headers.get("user-agent") ?? "",
        });
      };
      const length = response.headers.get("content-length");
      // A declared length is taken as given, without touching `response.body`: reading that
      // getter turns a fixed body into a stream, which costs the fast path and keep-alive on
      // HTTP/1.0 (ab -k).
      if (request.method === "HEAD") finish(0);
      else if (length !== null) finish(Number(length) || 0);
      else if (!response.body) finish(0);
      else {
        // No declared length (small JSON bodies): measure it. Bodies up to a limit are read
        // whole and answered with a length (a streamed body would go out chunked); a larger one
        // is counted as it streams.
        const measured = await measure(response.body, finish);
        response = new Response(measured, response);
      }
      return response;
    };
  };

  return {
    metrics,
    wrap,
    endpoint: async (request) =>
      (await opsEndpoint(new URL(request.url).pathname, request.method)) ??
        new Response("not found\n", { status: 404 }),
    requestId: (request) => ids.get(request),
    label: (request, route) => void routes.set(request, route),
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
