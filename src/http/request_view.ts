/**
 * What berth reads of a request: method, URL, header fields, body, abort signal. A standard
 * `Request` has all of these; the HTTP server (src/http/server.ts) hands the pipeline a lighter
 * {@link IncomingRequest} over the fields it parsed, and builds a `Request` only when one is
 * asked for. Building Deno's `Request` and `Headers` (each field validated and copied again,
 * names sorted when walked) was a fifth of the CPU of a manifest HEAD (bench/README.md).
 *
 * @module
 */

/** Read access to header fields (what `Headers` offers for reading). */
export interface HeaderView {
  /** The field's value (several fields of the name joined with `, `), or `null`. */
  get(name: string): string | null;
  /** Whether the field is present. */
  has(name: string): boolean;
  /** Each field, value first (as `Headers.forEach`). */
  forEach(callback: (value: string, name: string) => void): void;
}

/** A request as berth reads it; a `Request` is one. */
export interface RequestView {
  /** The method (the standard ones upper-cased, as `Request` does). */
  readonly method: string;
  /** The absolute URL. */
  readonly url: string;
  /** The header fields. */
  readonly headers: HeaderView;
  /** The body, or `null` when the request has none. */
  readonly body: ReadableStream<Uint8Array> | null;
  /** Aborts when the client goes away. */
  readonly signal: AbortSignal;
}

/** Header fields in the order received, names lower-cased. */
export class FieldList implements HeaderView {
  readonly #fields: [string, string][];

  constructor(fields: [string, string][]) {
    this.#fields = fields;
  }

  get(name: string): string | null {
    const key = name.toLowerCase();
    let value: string | null = null;
    for (const field of this.#fields) {
      if (field[0] === key) value = value === null ? field[1] : `${value}, ${field[1]}`;
    }
    return value;
  }

  has(name: string): boolean {
    const key = name.toLowerCase();
    for (const field of this.#fields) if (field[0] === key) return true;
    return false;
  }

  forEach(callback: (value: string, name: string) => void): void {
    for (const field of this.#fields) callback(field[1], field[0]);
  }

  /** The fields as `[name, value]` pairs. */
  entries(): [string, string][] {
    return this.#fields;
  }
}

/**
 * Origin-form targets whose path a URL keeps exactly as sent: no query, no percent-encoding, no
 * dot segments, only characters a path carries unencoded (RFC 3986 unreserved, sub-delims, `:`,
 * `@`).
 */
const PLAIN_PATH = /^(?:\/[A-Za-z0-9\-_~!$&'()*+,;=:@][A-Za-z0-9\-._~!$&'()*+,;=:@]*|\/)+$/;

/** Where a request is addressed: its URL, or its path alone while nothing needs more. */
export type RequestTarget = URL | { base: string; path: string };

/** A request read by berth's server: the parsed fields, a `Request` built on demand. */
export class IncomingRequest implements RequestView {
  readonly method: string;
  /** The URL's path (what routing needs; the URL itself is parsed only when asked for). */
  readonly path: string;
  readonly headers: FieldList;
  readonly body: ReadableStream<Uint8Array> | null;
  /** `performance.now()` when its head was read. */
  readonly received: number;
  #url: URL | undefined;
  /** `scheme://host` of a URL not parsed yet. */
  #base: string;
  #request: Request | undefined;
  /** Made when the signal is first asked for (most requests never ask). */
  #abort: AbortController | undefined;
  /** Why the request was aborted, once it was. */
  #reason: Error | undefined;

  /**
   * A request to `target`: a parsed URL, or `base` (`scheme://host`, checked) and a plain path
   * ({@link isPlainPath}) whose URL is parsed when first asked for.
   */
  constructor(
    method: string,
    target: RequestTarget,
    headers: FieldList,
    body: ReadableStream<Uint8Array> | null,
    received: number,
  ) {
    this.method = method;
    if (target instanceof URL) {
      this.#url = target;
      this.#base = "";
      this.path = target.pathname;
    } else {
      this.#base = target.base;
      this.path = target.path;
    }
    this.headers = headers;
    this.body = body;
    this.received = received;
  }

  /** Aborts when the client goes away (or the body fails). */
  get signal(): AbortSignal {
    if (!this.#abort) {
      this.#abort = new AbortController();
      if (this.#reason) this.#abort.abort(this.#reason);
    }
    return this.#abort.signal;
  }

  /** Abort the request (its signal, now or when first asked for); later calls do nothing. */
  abort(reason: Error): void {
    if (this.#reason) return;
    this.#reason = reason;
    this.#abort?.abort(reason);
  }

  /** The URL, parsed once. */
  get parsedUrl(): URL {
    return this.#url ??= new URL(this.#base + this.path);
  }

  get url(): string {
    return this.parsedUrl.href;
  }

  /** The length of {@link url} as sent (`scheme://host` and the target), without parsing it. */
  get urlLength(): number {
    return this.#url ? this.#url.href.length : this.#base.length + this.path.length;
  }

  /**
   * The same request as a standard `Request` (built once). Its body is this body unless a reader
   * has it already (the pipeline's limits guard reads it for `ctx.body`): then it has none.
   */
  toRequest(): Request {
    return this.#request ??= new Request(this.parsedUrl, {
      method: this.method,
      headers: this.headers.entries(),
      body: this.body?.locked ? null : this.body,
      signal: this.signal,
    });
  }
}

/** Whether an origin-form target is a path a URL keeps as sent (see {@link IncomingRequest}). */
export function isPlainPath(target: string): boolean {
  return PLAIN_PATH.test(target);
}

/** Methods `Request` upper-cases whatever their case (the Fetch standard's normalization). */
const NORMALIZED = new Set(["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"]);

/** A method as `Request` would carry it. */
export function normalizeMethod(method: string): string {
  if (NORMALIZED.has(method)) return method;
  const upper = method.toUpperCase();
  return NORMALIZED.has(upper) ? upper : method;
}

/** The request as a standard `Request` (the same object when it is one). */
export function asRequest(request: RequestView): Request {
  return request instanceof IncomingRequest ? request.toRequest() : request as Request;
}
