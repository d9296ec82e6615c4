/**
 * One HTTP exchange with a registry: HTTP/1.1 over kept-alive raw connections (`http1.ts`: bodies
 * with `Content-Length`, responses streamed from the socket) for plain HTTP and verified HTTPS;
 * `fetch` when a proxy is configured (only it knows the way); `node:http(s)` for HTTPS without
 * certificate verification (`fetch` and `Deno.connectTls` cannot skip it).
 * Redirects are followed by hand so credentials never leave the registry's origin; retries with
 * backoff on 429, 5xx and connection errors honour `Retry-After`.
 *
 * @module
 */
import type http from "node:http";
import { ClientError, errorMessage } from "./errors.ts";
import { BufferPool } from "../bytes.ts";
import { Http1Connections, type HttpResponse, type RawTls } from "./http1.ts";
export type { HttpResponse } from "./http1.ts";

/** TLS settings of a client. */
export interface TlsOptions {
  /** Verify the server's certificate (default true). */
  verify?: boolean;
  /** Extra trusted CA certificates (PEM). */
  caCerts?: string[];
  /** Client certificate (PEM), with `key`. */
  cert?: string;
  /** Client key (PEM). */
  key?: string;
}

/** A request body: its exact length, and a way to (re)open it for each attempt. */
export interface RequestBody {
  /** Length in bytes (sent as `Content-Length`). */
  length: number;
  /** The bytes, or a function that opens a fresh stream of them. */
  open: Uint8Array | (() => Promise<ReadableStream<Uint8Array>>);
}

/** One request. */
export interface HttpRequest {
  /** Method. */
  method: string;
  /** Absolute URL. */
  url: string;
  /** Headers (`Authorization` is dropped on redirects to another origin). */
  headers?: Record<string, string>;
  /** Body, if any. */
  body?: RequestBody;
  /** Abort signal. */
  signal?: AbortSignal;
  /** Retries for this request, when not the sender's default (0 for bodies sent once). */
  retries?: number;
}

/** Retry policy. */
export interface RetryOptions {
  /** Attempts after the first (default 4). */
  retries?: number;
  /** First backoff in ms (default 250), doubled each time. */
  baseDelayMs?: number;
  /** Longest wait in ms, `Retry-After` included (default 30 s). */
  maxDelayMs?: number;
  /** Give up an attempt whose response headers take longer than this (ms); none by default. */
  timeoutMs?: number;
}

const RETRY_STATUSES = new Set([429, 500, 502, 503, 504]);
const MAX_REDIRECTS = 10;
/** Size of the buffers streamed uploads read their bodies into (two per upload, pooled). */
const UPLOAD_BUFFER = 1 << 20;

/** Whether a status is worth retrying. */
export function isRetryableStatus(status: number): boolean {
  return RETRY_STATUSES.has(status);
}

/** The wait `Retry-After` asks for in ms (seconds or an HTTP date), or undefined. */
export function retryAfterMs(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Sends requests over one connection pool with one TLS setting. */
export class HttpSender {
  #tls: TlsOptions;
  #client: Deno.HttpClient | undefined;
  #retry: Required<Omit<RetryOptions, "timeoutMs">>;
  #timeoutMs: number | undefined;
  #proxied = proxyConfigured();
  #connections: Http1Connections;

  /** A sender with TLS and retry settings. */
  constructor(tls: TlsOptions = {}, retry: RetryOptions = {}) {
    this.#tls = tls;
    this.#retry = {
      retries: retry.retries ?? 4,
      baseDelayMs: retry.baseDelayMs ?? 250,
      maxDelayMs: retry.maxDelayMs ?? 30_000,
    };
    this.#timeoutMs = retry.timeoutMs;
    this.#connections = new Http1Connections({
      tls: rawTls(tls),
      buffers: new BufferPool(UPLOAD_BUFFER, 32),
    });
    const custom = (tls.caCerts?.length ?? 0) > 0 || tls.cert !== undefined;
    if (custom) {
      this.#client = Deno.createHttpClient({
        ...(tls.caCerts?.length && { caCerts: tls.caCerts }),
        ...(tls.cert !== undefined && tls.key !== undefined && { cert: tls.cert, key: tls.key }),
      });
    }
  }

  /** Release the connection pools. */
  close(): void {
    this.#connections.close();
    this.#client?.close();
    this.#client = undefined;
  }

  /** Send with retries on 429/5xx/connection errors; the last answer or error is returned. */
  async send(request: HttpRequest): Promise<HttpResponse> {
    const retries = request.retries ?? this.#retry.retries;
    for (let attempt = 0;; attempt++) {
      let response: HttpResponse;
      // Streamed uploads take as long as their body: only the other requests get a deadline.
      const deadline = this.#timeoutMs !== undefined &&
          !(request.body && !(request.body.open instanceof Uint8Array))
        ? new AbortController()
        : undefined;
      const timer = deadline && setTimeout(() => deadline.abort(), this.#timeoutMs);
      try {
        response = await this.sendFollowing(
          deadline
            ? {
              ...request,
              signal: request.signal
                ? AbortSignal.any([request.signal, deadline.signal])
                : deadline.signal,
            }
            : request,
        );
      } catch (caught) {
        if (request.signal?.aborted) throw abortError(request.signal);
        const error = deadline?.signal.aborted
          ? new Error(`no answer within ${this.#timeoutMs} ms`)
          : caught;
        if (error instanceof ClientError || attempt >= retries) {
          throw error instanceof ClientError ? error : new ClientError(
            "unreachable",
            `${hostOf(request.url)} unreachable: ${errorMessage(error)}`,
            { cause: error },
          );
        }
        await sleep(this.#backoff(attempt), request.signal);
        continue;
      } finally {
        clearTimeout(timer);
      }
      if (!isRetryableStatus(response.status) || attempt >= retries) return response;
      const wait = retryAfterMs(response.headers.get("Retry-After")) ?? this.#backoff(attempt);
      await response.body?.cancel();
      await sleep(Math.min(wait, this.#retry.maxDelayMs), request.signal);
    }
  }

  #backoff(attempt: number): number {
    const delay = this.#retry.baseDelayMs * 2 ** attempt;
    return Math.min(this.#retry.maxDelayMs, delay / 2 + Math.random() * delay / 2);
  }

  /** One attempt, following redirects of GET and HEAD (credentials stay on their origin). */
  async sendFollowing(request: HttpRequest): Promise<HttpResponse> {
    let current = request;
    for (let hop = 0;; hop++) {
      const response = await this.#sendOnce(current);
      const location = response.headers.get("Location");
      const redirect = [301, 302, 303, 307, 308].includes(response.status) && location &&
        (current.method === "GET" || current.method === "HEAD");
      if (!redirect) return response;
      await response.body?.cancel();
      if (hop >= MAX_REDIRECTS) {
        throw new ClientError("protocol", `too many redirects from ${hostOf(request.url)}`);
      }
      const next = new URL(location, current.url);
      const headers = { ...current.headers };
      if (next.origin !== new URL(current.url).origin) {
        for (const key of Object.keys(headers)) {
          if (key.toLowerCase() === "authorization") delete headers[key];
        }
      }
      current = { ...current, url: next.href, headers };
    }
  }

  async #sendOnce(request: HttpRequest): Promise<HttpResponse> {
    const insecure = this.#tls.verify === false && request.url.startsWith("https:");
    const streamed = request.body !== undefined && !(request.body.open instanceof Uint8Array);
    if (!insecure && !this.#proxied) return await this.#sendRaw(request);
    if (streamed && !insecure) return await this.#sendFetchStream(request);
    if (insecure || streamed) return await this.#sendNode(request, insecure);
    const headers = new Headers(request.headers);
    if (request.body) headers.set("Content-Length", String(request.body.length));
    return await fetch(request.url, {
      method: request.method,
      headers,
      redirect: "manual",
      ...(request.body && { body: request.body.open as Uint8Array<ArrayBuffer> }),
      ...(request.signal && { signal: request.signal }),
      ...(this.#client && { client: this.#client }),
    });
  }

  /** Through an HTTP proxy only `fetch` knows the way: the body goes chunked. */
  async #sendFetchStream(request: HttpRequest): Promise<HttpResponse> {
    const open = request.body!.open as () => Promise<ReadableStream<Uint8Array>>;
    return await fetch(request.url, {
      method: request.method,
      headers: request.headers ?? {},
      redirect: "manual",
      body: await open(),
      ...(request.signal && { signal: request.signal }),
      ...(this.#client && { client: this.#client }),
    });
  }

  async #sendRaw(request: HttpRequest): Promise<HttpResponse> {
    const body = request.body;
    const source = body === undefined
      ? undefined
      : body.open instanceof Uint8Array
      ? body.open
      : await body.open();
    try {
      return await this.#connections.request(
        request.method,
        new URL(request.url),
        request.headers ?? {},
        source === undefined ? undefined : { length: body!.length, source },
        request.signal,
      );
    } catch (error) {
      // A stream the request never read (no connection) is released.
      if (source instanceof ReadableStream && !source.locked) {
        await source.cancel(error).catch(() => {});
      }
      throw error;
    }
  }

  async #sendNode(request: HttpRequest, insecure: boolean): Promise<HttpResponse> {
    const url = new URL(request.url);
    const body = request.body;
    const headers: Record<string, string> = { ...request.headers };
    if (body) headers["Content-Length"] = String(body.length);
    const source = body === undefined
      ? undefined
      : body.open instanceof Uint8Array
      ? body.open
      : await body.open();
    const tls = url.protocol === "https:"
      ? {
        rejectUnauthorized: !insecure,
        // An explicit CA list (even empty) keeps node:tls from reading the system store, which
        // needs --allow-sys; unverified connections do not use it anyway.
        ca: this.#tls.caCerts ?? [],
        ...(this.#tls.cert !== undefined && { cert: this.#tls.cert, key: this.#tls.key }),
      }
      : {};
    // Loaded on first use: plain registries and verified HTTPS never need them.
    const [{ default: nodeHttp }, { default: nodeHttps }, { Readable }] = await Promise.all([
      import("node:http"),
      import("node:https"),
      import("node:stream"),
    ]);
    const { promise, resolve, reject } = Promise.withResolvers<Response>();
    promise.catch(() => {}); // observed below; a late error after a failed write is not unhandled
    const options = {
      method: request.method,
      hostname: url.hostname.replace(/^\[|\]$/g, ""),
      port: url.port || (url.protocol === "https:" ? 443 : 80),
      path: `${url.pathname}${url.search}`,
      headers,
      ...tls,
    };
    const onResponse = (res: http.IncomingMessage) => {
      const status = res.statusCode ?? 0;
      const responseHeaders = new Headers();
      for (const [key, value] of Object.entries(res.headers)) {
        if (value === undefined) continue;
        for (const v of Array.isArray(value) ? value : [value]) responseHeaders.append(key, v);
      }
      const nullBody = request.method === "HEAD" || [101, 204, 205, 304].includes(status);
      if (nullBody) res.resume();
      resolve(
        new Response(nullBody ? null : Readable.toWeb(res) as ReadableStream<Uint8Array>, {
          status,
          headers: responseHeaders,
        }),
      );
    };
    const req = url.protocol === "https:"
      ? nodeHttps.request(options, onResponse)
      : nodeHttp.request(options, onResponse);
    const onAbort = () => req.destroy(abortError(request.signal!));
    request.signal?.addEventListener("abort", onAbort, { once: true });
    req.on("error", (error) => {
      reject(error);
    });
    try {
      if (source === undefined) req.end();
      else if (source instanceof Uint8Array) req.end(source);
      else await writeStream(req, source);
      return await promise;
    } catch (error) {
      req.destroy();
      if (source instanceof ReadableStream) await source.cancel(error).catch(() => {});
      throw error;
    } finally {
      request.signal?.removeEventListener("abort", onAbort);
    }
  }
}

/** Write a web stream into a node request, honouring backpressure; rejects on stream errors. */
async function writeStream(req: http.ClientRequest, source: ReadableStream<Uint8Array>) {
  const reader = source.getReader();
  let failed: Error | undefined;
  req.once("error", (error) => failed = error);
  try {
    while (true) {
      if (failed) throw failed;
      const { done, value } = await reader.read();
      if (done) break;
      if (!req.write(value)) {
        await new Promise<void>((resolve, reject) => {
          const onDrain = () => {
            req.off("error", onError);
            resolve();
          };
          const onError = (error: Error) => {
            req.off("drain", onDrain);
            reject(error);
          };
          req.once("drain", onDrain);
          req.once("error", onError);
        });
      }
    }
    req.end();
  } finally {
    reader.releaseLock();
  }
}

function rawTls(tls: TlsOptions): RawTls {
  return {
    ...(tls.caCerts && { caCerts: tls.caCerts }),
    ...(tls.cert !== undefined && tls.key !== undefined && { cert: tls.cert, key: tls.key }),
  };
}

/** Whether an HTTP proxy is configured in the environment (fetch honours it, raw sockets not). */
function proxyConfigured(): boolean {
  try {
    return ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
      .some((key) => Boolean(Deno.env.get(key)));
  } catch {
    return false;
  }
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

function abortError(signal: AbortSignal): ClientError {
  return new ClientError("aborted", `interrupted (${errorMessage(signal.reason ?? "aborted")})`);
}

/** Sleep `ms`, or reject when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal!));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
