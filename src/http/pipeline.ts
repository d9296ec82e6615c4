/**
 * The request pipeline: every request passes these stages in order, carrying one
 * {@link RequestContext} built by the first:
 *
 * 1. arrive: the context (id, URL parsed once, client address, timing); counted in flight
 *    (src/ops/ops.ts)
 * 2. drain: 503 while the registry shuts down (src/ops/ops.ts)
 * 3. ops endpoints: `/healthz`, `/metrics` (src/ops/ops.ts)
 * 4. auth endpoints: the token endpoint (src/auth/access_control.ts)
 * 5. route: the path matched once, 404/405 (src/http/router.ts, src/http/routes.ts)
 * 6. read-only: writes refused (here)
 * 7. admit: header and body size, the body guard (src/http/limits.ts)
 * 8. access: identity and the access decision, 401/403 (src/auth/access_control.ts)
 * 9. uploads: open upload sessions per client, 429 (src/http/limits.ts)
 * 10. handler: HTTP in, a service call, a response out (src/handlers/)
 * 11. error boundary: a thrown error becomes its response (invalid OCI input its registry code,
 *     src/errors.ts); an unreachable storage backend 503; anything unexpected one logged 500
 *     (here)
 * 12. settle: common headers, upload sessions noted, unread body released (here,
 *     src/http/limits.ts), then metrics and the access log (src/ops/ops.ts)
 *
 * @module
 */
import type { Reply } from "./reply.ts";
import { type AccessControl, TOKEN_PATH } from "../auth/access_control.ts";
import { asRegistryError, isStorageError, RegistryError } from "../errors.ts";
import { HEALTH_PATH, METRICS_PATH, type Ops } from "../ops/ops.ts";
import { StorageUnavailable } from "../storage/unavailable.ts";
import { AddressSet, clientAddress, peerOf } from "./client_address.ts";
import { newContext, type RequestContext } from "./context.ts";
import type { RequestLimits } from "./limits.ts";
import type { RequestView } from "./request_view.ts";
import type { Router } from "./router.ts";

/** A request handler with Deno's connection info, as `Deno.serve` calls it (or berth's server,
 * with its lighter request view). */
export type ServeHandler = (
  request: RequestView,
  info?: { remoteAddr?: Deno.Addr },
) => Promise<Response>;

/** The pipeline: a {@link ServeHandler} whose answer may be a {@link Reply} (berth's server
 * writes one as it is; {@link toResponse} makes it a `Response`), given at once when no stage
 * had to wait. */
export type PipelineHandler = (
  request: RequestView,
  info?: { remoteAddr?: Deno.Addr },
) => Response | Reply | Promise<Response | Reply>;

/** An answer, or the promise of one. */
type Answer = Response | Reply | Promise<Response | Reply>;

/** What a released body's cancel failing is answered with: nothing. */
const IGNORE = () => {};

/** What the pipeline runs with. */
export interface PipelineParts {
  /** Operations: in flight, drain, endpoints, metrics, access log. */
  ops: Ops;
  /** The route table. */
  router: Router;
  /** Request limits. */
  limits: RequestLimits;
  /** Authentication and authorization, when configured. */
  access: AccessControl | undefined;
  /** Refuse every write. */
  readOnly: boolean;
  /** Peers whose `X-Forwarded-For` names the client. */
  trustedProxies: readonly string[];
  /** Where unexpected errors are reported. */
  logError: (message: string, fields: Record<string, unknown>) => void;
}

/** Build the request pipeline. */
export function createPipeline(parts: PipelineParts): PipelineHandler {
  const { ops, router, limits, access, readOnly, logError } = parts;
  const trusted = new AddressSet(parts.trustedProxies);

  /**
   * Stages 2–10: the response, or a thrown error (or a rejected promise). Stages that need not
   * wait answer synchronously: no promise is made for a request no stage waits on.
   */
  const run = (ctx: RequestContext): Answer => {
    if (ops.draining) {
      throw new RegistryError("UNAVAILABLE", null, {
        message: "the registry is shutting down",
        headers: { Connection: "close", "Retry-After": "5" },
      });
    }
    const path = ctx.path;
    // Only their own paths go to the ops and auth endpoints (no call, no await for the rest).
    if (path === HEALTH_PATH || path === METRICS_PATH) {
      return ops.endpoint(ctx).then((own) => own ?? route(ctx));
    }
    if (access && path === TOKEN_PATH) {
      return access.intercept(ctx).then((own) => own ?? route(ctx));
    }
    return route(ctx);
  };

  /** Stages 5–10. */
  const route = (ctx: RequestContext): Answer => {
    const path = ctx.path;
    const match = router.match(ctx.method, path);
    if (match.kind === "none") {
      throw new RegistryError("ROUTE_UNKNOWN", { path: path.slice(0, 300) });
    }
    ctx.route = match.label;
    if (match.kind === "method") {
      throw new RegistryError("METHOD_NOT_ALLOWED", { method: ctx.method }, {
        message: `method ${ctx.method} not allowed here`,
        headers: { Allow: match.allowed.join(", ") },
      });
    }
    ctx.params = match.params;
    if (readOnly && ctx.method !== "GET" && ctx.method !== "HEAD") {
      throw new RegistryError("UNSUPPORTED", null, {
        message: "the registry is in read-only mode",
      });
    }
    limits.admit(ctx, ops.drainSignal);
    if (access) {
      return access.check(ctx).then(() => {
        limits.openUpload(ctx);
        return match.handler(ctx);
      });
    }
    limits.openUpload(ctx);
    return match.handler(ctx);
  };

  /** Stage 11: a thrown value as a registry error; unexpected ones are logged as one 500. */
  const boundary = (error: unknown, ctx: RequestContext): RegistryError => {
    const known = asRegistryError(error);
    if (known) return known;
    if (error instanceof StorageUnavailable) {
      ops.metrics.storageError();
      return new RegistryError("STORAGE_UNAVAILABLE", null, { headers: { "Retry-After": "5" } });
    }
    if (!ctx.request.signal.aborted) {
      if (isStorageError(error)) ops.metrics.storageError();
      logError("unexpected error", {
        requestId: ctx.id,
        method: ctx.method,
        path: ctx.path,
        error: error instanceof Error ? (error.stack ?? error.message) : String(error),
      });
    }
    return new RegistryError("UNKNOWN", { requestId: ctx.id });
  };

  /** Stage 12. */
  const settle = (ctx: RequestContext, response: Response | Reply): Answer => {
    // A body the handler left unread (or half read on an error) is released so the connection
    // can end; on a body already read to the end this does nothing.
    ctx.body?.cancel().catch(IGNORE);
    // `append`, not `set`: no handler sets it, and a `set` scans every header first.
    response.headers.append("Docker-Distribution-API-Version", "registry/2.0");
    limits.settle(ctx, response);
    return ops.finish(ctx, response);
  };

  return (request, info) => {
    const ctx = newContext(
      request,
      ops.requestId(request),
      clientAddress(peerOf(info), request.headers.get("x-forwarded-for"), trusted),
    );
    ops.enter();
    let answer: Answer;
    try {
      answer = run(ctx);
    } catch (error) {
      answer = boundary(error, ctx).toResponse(ctx.method);
    }
    if (!(answer instanceof Promise)) return settle(ctx, answer);
    return answer.then(
      (response) => settle(ctx, response),
      (error) => settle(ctx, boundary(error, ctx).toResponse(ctx.method)),
    );
  };
}
