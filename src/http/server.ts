/**
 * berth's HTTP/1.1 server, over `Deno.listen` (or `Deno.listenTls`). It reads request heads
 * itself, which gives what `Deno.serve` lacks:
 *
 * - a connection whose request head is not complete `headerTimeoutMs` after it opened (or after
 *   the first byte of a later request) is closed;
 * - a keep-alive connection with no request for `idleTimeoutMs` is closed;
 * - a connection whose client reads nothing of a response for `writeTimeoutMs` (one write that
 *   does not complete: the socket's buffers are full) is closed, and the response abandoned;
 * - beyond `maxConnections` open connections, new ones are closed as they arrive;
 * - request lines over 8 KiB get 414, heads over `maxHeadBytes` 431, malformed framing 400.
 *
 * Each request becomes a standard `Request` whose body streams from the socket (`Content-Length`
 * or chunked; `100 Continue` sent when the handler first reads it), the handler runs in process,
 * and its `Response` is written back (response_writer.ts). Requests on one connection are
 * answered in order (pipelining). When the client goes away, the request's signal aborts and its
 * body errors. A timeout of 0 turns that timeout off; `maxConnections` 0 lifts the cap.
 *
 * @module
 */
import type { Arrivals } from "./arrivals.ts";
import { ConnReader } from "./conn_reader.ts";
import { DEFAULT_CONNECTION_LIMITS } from "./connection_limits.ts";
import type { ConnectionLimits } from "./connection_limits.ts";
import { parseRequestHead, ProtocolError, type RequestHead, statusLine } from "./http1_head.ts";
import { requestBody } from "./request_body.ts";
import type { Reply } from "./reply.ts";
import {
  FieldList,
  IncomingRequest,
  isPlainPath,
  normalizeMethod,
  type RequestTarget,
} from "./request_view.ts";
import { fileBuffers, type WriteOptions, writeResponse } from "./response_writer.ts";

/** A request handler, called like `Deno.serve` calls one. */
export type HttpHandler = (
  request: Request,
  info: { remoteAddr: Deno.NetAddr },
) => Response | Promise<Response>;

/** A request handler given berth's light request (a `Request` is built only when asked for); it
 * may answer with a {@link Reply}. */
export type RequestHandler = (
  request: IncomingRequest,
  info: { remoteAddr: Deno.NetAddr },
) => Response | Reply | Promise<Response | Reply>;

/** Options of {@link serveHttp}. */
export interface ServeOptions extends Partial<ConnectionLimits> {
  /** Address to listen on. */
  hostname: string;
  /** Port (0: any free one). */
  port: number;
  /** PEM certificate chain, to serve HTTPS (with `key`). */
  cert?: string;
  /** PEM key. */
  key?: string;
  /** Most bytes of a request head (request line and header fields; 431 beyond). */
  maxHeadBytes?: number;
  /** Called once listening. */
  onListen?: (addr: Deno.NetAddr) => void;
  /** Counts the reads of client connections (for the store's tag epoch, see arrivals.ts). */
  arrivals?: Arrivals;
}

/** A running server. */
export interface HttpServer {
  /** The address it listens on. */
  addr: Deno.NetAddr;
  /** Resolves when the server has stopped. */
  finished: Promise<void>;
  /** Stop accepting, let requests in flight finish, close every connection. */
  shutdown(): Promise<void>;
}

/** Default most bytes of a request head. */
const DEFAULT_MAX_HEAD = 64 * 1024;
/** Most bytes of a request line (414 beyond). */
const MAX_REQUEST_LINE = 8 * 1024;
/** How long a connection closed with request bytes unread drains them, so the answer arrives. */
const LINGER_MS = 2000;
/** Methods a `Request` cannot carry: answered 405 without the handler. */
const FORBIDDEN_METHODS = new Set(["CONNECT", "TRACE", "TRACK"]);

const HEAD_METHOD = new TextEncoder().encode("HEAD ");

/** Whether the request whose first bytes these are is a `HEAD` (its answer carries no body). */
function isHead(start: Uint8Array): boolean {
  return start.length >= HEAD_METHOD.length && HEAD_METHOD.every((byte, i) => start[i] === byte);
}

/** Where a connection is between requests. */
type Phase = "idle" | "head" | "busy";

/** One client connection. */
interface Connection {
  conn: Deno.Conn;
  phase: Phase;
  /** When the phase began (on the server's coarse clock). */
  since: number;
  done: boolean;
  /** The request in flight, aborted when the connection goes. */
  request: IncomingRequest | undefined;
  /** When the write in progress started (0: none; coarse clock), for the write timeout. */
  writing: number;
  /** Fails the write in progress (one the client does not take) when the connection closes. */
  fail: ((reason: Error) => void) | undefined;
}

/** Serve `handler` over HTTP/1.1. Throws like `Deno.listen` when it cannot listen. */
export function serveHttp(options: ServeOptions, handler: HttpHandler): HttpServer {
  return serveRequests(options, (request, info) => handler(request.toRequest(), info));
}

/**
 * Serve `handler` over HTTP/1.1, giving it berth's light request view. Throws like `Deno.listen`
 * when it cannot listen.
 */
export function serveRequests(options: ServeOptions, handler: RequestHandler): HttpServer {
  const limits: ConnectionLimits = {
    headerTimeoutMs: options.headerTimeoutMs ?? DEFAULT_CONNECTION_LIMITS.headerTimeoutMs,
    idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_CONNECTION_LIMITS.idleTimeoutMs,
    writeTimeoutMs: options.writeTimeoutMs ?? DEFAULT_CONNECTION_LIMITS.writeTimeoutMs,
    maxConnections: options.maxConnections ?? DEFAULT_CONNECTION_LIMITS.maxConnections,
  };
  const headLimits = {
    maxRequestLine: MAX_REQUEST_LINE,
    maxHeadBytes: Math.max(options.maxHeadBytes ?? DEFAULT_MAX_HEAD, MAX_REQUEST_LINE + 2),
  };
  const tls = options.cert !== undefined && options.key !== undefined;
  const listener = tls
    ? Deno.listenTls({
      hostname: options.hostname,
      port: options.port,
      cert: options.cert!,
      key: options.key!,
      alpnProtocols: ["http/1.1"],
    })
    : Deno.listen({ hostname: options.hostname, port: options.port });
  const addr = listener.addr as Deno.NetAddr;
  const scheme = tls ? "https" : "http";
  const defaultHost = addr.hostname.includes(":")
    ? `[${addr.hostname}]:${addr.port}`
    : `${addr.hostname}:${addr.port}`;
  const open = new Set<Connection>();
  const ended = new Set<Promise<void>>();
  const pool = fileBuffers();
  let stopping = false;

  // The Date header, formatted once a second: read when first needed, kept until a timer at the
  // next second says it is stale (no clock read per response; no timer while nobody asks).
  let dateText: string | undefined;
  let dateTimer: ReturnType<typeof setTimeout> | undefined;
  const date = () => {
    if (dateText === undefined) {
      const wall = Date.now();
      dateText = new Date(wall).toUTCString();
      dateTimer = setTimeout(() => dateText = dateTimer = undefined, 1000 - (wall % 1000));
    }
    return dateText;
  };
  // The timeouts' clock: read by each sweep, so phases and writes are stamped without a clock
  // read of their own; a stamp is then up to one sweep interval early, which the sweep allows.
  const clock = { now: performance.now() };

  const close = (connection: Connection) => {
    if (connection.done) return;
    connection.done = true;
    open.delete(connection);
    const reason = new Error("the client connection closed");
    connection.request?.abort(reason);
    connection.fail?.(reason);
    try {
      connection.conn.close();
    } catch { /* already closed */ }
  };

  const timeouts = [limits.headerTimeoutMs, limits.idleTimeoutMs, limits.writeTimeoutMs]
    .filter((ms) => ms > 0);
  const interval = Math.max(20, Math.min(1000, ...timeouts.map((ms) => ms / 4)));
  const sweep = () => {
    const now = clock.now = performance.now();
    // Stamps come from the previous sweep's clock: a phase is over its limit once it is over by
    // one interval more (never closed early, at most an interval late).
    const past = (stamp: number, limit: number) => limit > 0 && now - stamp > limit + interval;
    for (const connection of open) {
      const { phase, since, writing } = connection;
      if (phase === "head" && past(since, limits.headerTimeoutMs)) close(connection);
      else if (phase === "idle" && past(since, limits.idleTimeoutMs)) close(connection);
      else if (writing > 0 && past(writing, limits.writeTimeoutMs)) close(connection);
    }
  };
  const timer = timeouts.length > 0 ? setInterval(sweep, interval) : undefined;

  /**
   * Answer a request refused before the handler, and end the connection. `head` is the start of
   * the request as read (its method decides whether the answer carries a body: none for HEAD).
   */
  const refuse = async (connection: Connection, error: ProtocolError, head: Uint8Array) => {
    const message = `${error.message}\n`;
    const body = isHead(head) ? "" : message;
    const extra = error.status === 405 ? "allow: GET, HEAD, POST, PUT, PATCH, DELETE\r\n" : "";
    const text = `${statusLine(error.status)}content-type: text/plain; charset=utf-8\r\n` +
      `${extra}content-length: ${message.length}\r\ndate: ${date()}\r\nconnection: close\r\n\r\n${body}`;
    try {
      await connection.conn.write(new TextEncoder().encode(text));
    } catch { /* gone */ }
  };

  /**
   * The request a head describes (what `new Request` would refuse is refused here). `hosts`
   * remembers the last `Host` a URL was parsed with on this connection (and its `scheme://host`):
   * a plain path under it needs no URL until one is asked for.
   */
  const toRequest = (
    head: RequestHead,
    body: ReadableStream<Uint8Array> | null,
    received: number,
    hosts: { host: string | undefined; checked: string },
  ): IncomingRequest => {
    let target: RequestTarget;
    try {
      if (head.target.startsWith("/")) {
        const host = head.host || defaultHost;
        if (host === hosts.host && isPlainPath(head.target)) {
          target = { base: hosts.checked, path: head.target };
        } else {
          const base = `${scheme}://${host}`;
          target = new URL(base + head.target);
          hosts.host = host;
          hosts.checked = base;
        }
      } else if (/^https?:\/\//i.test(head.target)) target = new URL(head.target);
      else throw new ProtocolError(400, "unsupported request target");
    } catch (error) {
      if (error instanceof ProtocolError) throw error;
      throw new ProtocolError(400, "malformed request");
    }
    const method = normalizeMethod(head.method);
    if (FORBIDDEN_METHODS.has(method.toUpperCase())) {
      throw new ProtocolError(405, "method not allowed");
    }
    if (body !== null && (method === "GET" || method === "HEAD")) {
      throw new ProtocolError(400, "malformed request");
    }
    return new IncomingRequest(method, target, new FieldList(head.headers), body, received);
  };

  const serveConnection = async (connection: Connection) => {
    const { conn } = connection;
    const reader = new ConnReader(conn, options.arrivals);
    const info = { remoteAddr: conn.remoteAddr as Deno.NetAddr };
    const hosts = { host: undefined as string | undefined, checked: "" };
    // What the writer is told of each request (one object per connection).
    const writing: WriteOptions = {
      method: "GET",
      minor: 1,
      keepAlive: true,
      date: "",
      pool,
      watch: connection,
      clock,
      scratch: undefined,
    };
    let lingering = false;
    // The first bytes of a request end the idle phase (one closure per connection).
    const onHeadBytes = () => {
      if (connection.phase === "idle") {
        connection.phase = "head";
        connection.since = clock.now;
      }
    };
    try {
      while (!connection.done && !stopping) {
        if (connection.phase !== "head") {
          connection.phase = reader.buffered > 0 ? "head" : "idle";
          connection.since = clock.now;
        }
        let bytes: Uint8Array | null = null;
        let head: RequestHead;
        try {
          bytes = await reader.readHead(headLimits, onHeadBytes);
          if (bytes === null) break;
          head = parseRequestHead(bytes);
        } catch (error) {
          if (!(error instanceof ProtocolError)) throw error;
          await refuse(connection, error, bytes ?? reader.peek());
          lingering = true;
          break;
        }
        connection.phase = "busy";
        // When the request arrived (for its metrics: the server's one clock read per request).
        const received = performance.now();
        let request: IncomingRequest | undefined;
        let continued = !head.expectContinue;
        const body = head.body.kind === "none"
          ? undefined
          : requestBody(reader, head.body, headLimits.maxHeadBytes, {
            beforeFirstRead: async () => {
              if (continued) return;
              continued = true;
              await conn.write(new TextEncoder().encode("HTTP/1.1 100 Continue\r\n\r\n"));
            },
            onError: () => request?.abort(new Error("the request body failed")),
          });
        try {
          request = toRequest(head, body?.stream ?? null, received, hosts);
        } catch (error) {
          if (!(error instanceof ProtocolError)) throw error;
          await refuse(connection, error, bytes);
          lingering = body !== undefined;
          break;
        }
        connection.request = request;
        let response: Response | Reply;
        try {
          // Awaited only when it is a promise (a synchronous answer costs no promise).
          const answer = handler(request, info);
          response = answer instanceof Promise ? await answer : answer;
        } catch {
          response = new Response("internal server error\n", { status: 500 });
        }
        const complete = body === undefined || body.complete;
        // A body left unread ends the connection: what follows it is not a request.
        const keepAlive = head.keepAlive && complete && !stopping;
        writing.method = head.method;
        writing.minor = head.minor;
        writing.keepAlive = keepAlive;
        writing.date = date();
        const kept = await writeResponse(conn, response, writing);
        connection.request = undefined;
        if (!kept) {
          lingering = !complete;
          break;
        }
      }
    } catch {
      // A reset or a closed socket ends the connection.
    }
    if (lingering && !connection.done) await linger(connection);
    close(connection);
  };

  /**
   * Close the sending side, then read and drop what the client still sends for a moment: closing
   * with unread bytes would reset the connection, and the client could lose the answer.
   */
  const linger = async (connection: Connection) => {
    const { conn } = connection;
    connection.phase = "busy";
    const timer = setTimeout(() => close(connection), LINGER_MS);
    try {
      await conn.closeWrite();
      const sink = new Uint8Array(16 * 1024);
      while ((await conn.read(sink)) !== null);
    } catch {
      // Closed by the timer or the client.
    } finally {
      clearTimeout(timer);
    }
  };

  const accept = async () => {
    for await (const conn of listener) {
      if (stopping || (limits.maxConnections > 0 && open.size >= limits.maxConnections)) {
        try {
          conn.close();
        } catch { /* gone */ }
        continue;
      }
      // Small responses go out at once (Nagle's delay would meet the client's delayed ACK).
      if ("setNoDelay" in conn) (conn as Deno.TcpConn).setNoDelay(true);
      const connection: Connection = {
        conn,
        phase: "head",
        since: clock.now,
        done: false,
        request: undefined,
        writing: 0,
        fail: undefined,
      };
      open.add(connection);
      const done = serveConnection(connection);
      ended.add(done);
      done.finally(() => ended.delete(done));
    }
  };
  const accepting = accept().catch(() => {});
  options.onListen?.(addr);

  const { promise: finished, resolve: finish } = Promise.withResolvers<void>();
  let stopped: Promise<void> | undefined;
  const shutdown = () =>
    stopped ??= (async () => {
      stopping = true;
      try {
        listener.close();
      } catch { /* closed */ }
      await accepting;
      // Connections between requests close now; the others after their response.
      for (const connection of open) {
        if (connection.phase !== "busy") close(connection);
      }
      await Promise.all(ended);
      if (timer !== undefined) clearInterval(timer);
      clearTimeout(dateTimer);
      finish();
    })();
  return { addr, finished, shutdown };
}
