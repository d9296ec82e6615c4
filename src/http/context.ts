/**
 * The request context: one object per request, built once when the request arrives and passed
 * down every stage of the pipeline (src/http/pipeline.ts) to the handler. Each stage adds what it
 * learns (route, identity, access decision, limits ticket); nothing about a request is kept
 * anywhere else.
 *
 * @module
 */
import type { Reply } from "./reply.ts";
import type { Identity } from "../auth/access_control.ts";
import { IncomingRequest, type RequestView } from "./request_view.ts";

/** Path parameters of a matched route. */
export type Params = Record<string, string>;

/** What the limits stage noted about a request on an upload session (see src/http/limits.ts). */
export interface UploadTicket {
  /** Whom the session counts against (`user:<name>` or `addr:<address>`). */
  key: string;
  /** `start` for a POST that may open a session, else the session id the request is on. */
  upload: string;
}

/** What the access stage decided beyond "allowed" (src/auth/access_control.ts). */
export interface AccessDecision {
  /** Whether a cross-repository mount may read its `from` repository (else a plain upload). */
  mount: boolean;
}

/** Everything known about one request. */
export interface RequestContext {
  /** The request id (`X-Request-Id`, given or made). */
  readonly id: string;
  /** The request as the server gave it (a `Request`, or the server's lighter view). */
  readonly request: RequestView;
  /** Its method. */
  readonly method: string;
  /** Its URL's path. */
  readonly path: string;
  /** Its URL, parsed once (when first asked for, for berth's server's requests). */
  readonly url: URL;
  /** `performance.now()` when it arrived (its head was read). */
  readonly started: number;
  /** The address of the peer (a trusted proxy's client when it names one). */
  readonly client: string;
  /** The route label (a fixed set, for metrics and logs); `other` until routed. */
  route: string;
  /** Path parameters of the route. */
  params: Params;
  /** The body handlers read: the request's, guarded by the limits stage. */
  body: ReadableStream<Uint8Array> | null;
  /** Body bytes received (the declared length, or counted as they stream). */
  bytesIn: number;
  /** Who is calling (set by the access stage; `undefined` without auth). */
  identity: Identity | undefined;
  /** What the access stage decided. */
  access: AccessDecision;
  /** The upload-session ticket (set by the limits stage on upload requests). */
  ticket: UploadTicket | undefined;
}

/** A route handler. */
export type Handler = (ctx: RequestContext) => Response | Reply | Promise<Response | Reply>;

/** The context of one request. */
class Context implements RequestContext {
  readonly id: string;
  readonly request: RequestView;
  readonly method: string;
  readonly path: string;
  readonly started: number;
  readonly client: string;
  route = "other";
  params: Params = {};
  body: ReadableStream<Uint8Array> | null;
  bytesIn: number;
  identity: Identity | undefined = undefined;
  access: AccessDecision = { mount: true };
  ticket: UploadTicket | undefined = undefined;
  #url: URL | undefined;

  constructor(request: RequestView, id: string, client: string) {
    const declared = request.headers.get("content-length");
    this.id = id;
    this.request = request;
    this.method = request.method;
    if (request instanceof IncomingRequest) {
      this.path = request.path;
      this.started = request.received;
    } else {
      this.#url = new URL(request.url);
      this.path = this.#url.pathname;
      this.started = performance.now();
    }
    this.client = client;
    this.body = request.body;
    this.bytesIn = declared === null ? 0 : Number(declared) || 0;
  }

  get url(): URL {
    return this.#url ??= (this.request as IncomingRequest).parsedUrl;
  }
}

/** Build the context of a request that just arrived. */
export function newContext(request: RequestView, id: string, client: string): RequestContext {
  return new Context(request, id, client);
}
