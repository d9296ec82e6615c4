/**
 * The accept layer: what `Deno.serve` does not offer (Deno 2.9 has no header or idle timeout and
 * no connection cap; a connection that trickles header lines stays open for good). berth listens
 * itself, and relays each connection to a `Deno.serve` on a loopback port that only it uses:
 *
 * - a connection whose request headers are not complete `headerTimeoutMs` after it opened (or
 *   after the first byte of a later request) is closed;
 * - a keep-alive connection with no request in flight and no bytes moving for `idleTimeoutMs` is
 *   closed;
 * - beyond `maxConnections` open connections, new ones are closed as they arrive.
 *
 * Headers are complete when the inner server calls the handler; the handler is given the client's
 * real address. TLS, when configured, ends here.
 *
 * @module
 */
import { type ConnectionLimits, DEFAULT_CONNECTION_LIMITS } from "./connection_limits.ts";

/** A request handler as `Deno.serve` calls it. */
export type AcceptHandler = (
  request: Request,
  info: { remoteAddr: Deno.NetAddr },
) => Response | Promise<Response>;

/** Options of {@link serveGuarded}. */
export interface AcceptOptions extends Partial<ConnectionLimits> {
  /** Address to listen on. */
  hostname: string;
  /** Port (0: any free one). */
  port: number;
  /** PEM certificate chain and key, to serve HTTPS. */
  cert?: string;
  /** PEM key. */
  key?: string;
  /** Called once listening. */
  onListen?: (addr: Deno.NetAddr) => void;
}

/** A running server (the part of `Deno.HttpServer` berth uses). */
export interface GuardedServer {
  /** The address it listens on. */
  addr: Deno.NetAddr;
  /** Resolves when the server has stopped. */
  finished: Promise<void>;
  /** Stop accepting, let requests in flight finish, close every connection. */
  shutdown(): Promise<void>;
}

/** One client connection. */
interface Connection {
  client: Deno.Conn;
  upstream: Deno.Conn | undefined;
  peer: Deno.NetAddr;
  /** Requests whose handler has not returned yet. */
  inFlight: number;
  /** When the connection last went without a request in flight (or opened). */
  idleSince: number;
  /** When the first byte of a request arrived while none was in flight (0: none yet). */
  startedAt: number;
  /** Whether a request has been served on it. */
  served: boolean;
  /** When bytes last moved either way. */
  lastActivity: number;
  closed: boolean;
  /** After the server closed its side: when to stop waiting for the client to close (0: not). */
  lingerUntil: number;
  /** Resolves when both directions have ended. */
  ended: Promise<unknown>;
}

/** Relay buffer of a direction while bytes stream, and while it waits (idle keep-alive). */
const BUFFER = 256 * 1024;
const SMALL_BUFFER = 16 * 1024;
/** How long a connection the server has closed waits for the client to close it. */
const LINGER_MS = 2000;

/** Serve `handler` behind the accept layer. Throws like `Deno.serve` when it cannot listen. */
export function serveGuarded(options: AcceptOptions, handler: AcceptHandler): GuardedServer {
  const limits: ConnectionLimits = {
    headerTimeoutMs: options.headerTimeoutMs ?? DEFAULT_CONNECTION_LIMITS.headerTimeoutMs,
    idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_CONNECTION_LIMITS.idleTimeoutMs,
    maxConnections: options.maxConnections ?? DEFAULT_CONNECTION_LIMITS.maxConnections,
  };
  const listener = options.cert !== undefined && options.key !== undefined
    ? Deno.listenTls({
      hostname: options.hostname,
      port: options.port,
      cert: options.cert,
      key: options.key,
      alpnProtocols: ["http/1.1"],
    })
    : Deno.listen({ hostname: options.hostname, port: options.port });
  const addr = listener.addr as Deno.NetAddr;
  /** Open connections by the local port of their relay to the inner server. */
  const byRelayPort = new Map<number, Connection>();
  const open = new Set<Connection>();

  const inner = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: () => {},
  }, async (request, info) => {
    const conn = byRelayPort.get(info.remoteAddr.port);
    if (!conn) return new Response(null, { status: 421 });
    conn.inFlight++;
    conn.startedAt = 0;
    conn.served = true;
    try {
      return await handler(request, { remoteAddr: conn.peer });
    } finally {
      conn.inFlight--;
      if (conn.inFlight === 0) conn.idleSince = performance.now();
    }
  });
  const innerPort = inner.addr.port;

  const close = (conn: Connection) => {
    if (conn.closed) return;
    conn.closed = true;
    open.delete(conn);
    try {
      conn.client.close();
    } catch { /* already closed */ }
    if (conn.upstream) {
      byRelayPort.delete((conn.upstream.localAddr as Deno.NetAddr).port);
      try {
        conn.upstream.close();
      } catch { /* already closed */ }
    }
  };

  /**
   * Copy `from` into `to` until `from` ends, then pass the end on (half-close). `inbound` bytes
   * may start a request; once the server has closed its side, they are read and dropped, so the
   * client sees the response and a clean close rather than a reset (lingering close).
   */
  const relay = async (conn: Connection, from: Deno.Conn, to: Deno.Conn, inbound: boolean) => {
    const small = new Uint8Array(SMALL_BUFFER);
    let buffer = small;
    try {
      while (!conn.closed) {
        const n = await from.read(buffer);
        if (n === null) break;
        const now = performance.now();
        conn.lastActivity = now;
        if (inbound && conn.inFlight === 0 && conn.startedAt === 0) conn.startedAt = now;
        if (!(inbound && conn.lingerUntil > 0)) {
          try {
            let written = 0;
            while (written < n) written += await to.write(buffer.subarray(written, n));
          } catch (error) {
            // The server stopped reading (it answered early): drop the rest of the request.
            if (!inbound) throw error;
            conn.lingerUntil = performance.now() + LINGER_MS;
          }
          conn.lastActivity = performance.now();
        }
        // A full small read means a stream: read big until a read comes back short.
        if (buffer === small && n === small.length) buffer = new Uint8Array(BUFFER);
        else if (buffer !== small && n < small.length) buffer = small;
      }
    } catch {
      // A reset or a closed socket ends the pair.
      close(conn);
      return;
    }
    if (conn.closed) return;
    if (!inbound) conn.lingerUntil = performance.now() + LINGER_MS;
    await to.closeWrite().catch(() => {});
  };

  const sweep = () => {
    const now = performance.now();
    for (const conn of open) {
      if (conn.lingerUntil > 0) {
        if (now > conn.lingerUntil) close(conn);
        continue;
      }
      if (conn.inFlight > 0) continue;
      // A request's headers: from the connection's start, or from the first byte of a later one.
      const headerStart = conn.startedAt > 0 ? conn.startedAt : conn.served ? 0 : conn.idleSince;
      if (headerStart > 0 && now - headerStart > limits.headerTimeoutMs) {
        close(conn);
        continue;
      }
      const quiet = Math.min(now - conn.idleSince, now - conn.lastActivity);
      if (conn.served && conn.startedAt === 0 && quiet > limits.idleTimeoutMs) close(conn);
    }
  };
  const every = Math.max(20, Math.min(1000, limits.headerTimeoutMs / 4, limits.idleTimeoutMs / 4));
  const timer = setInterval(sweep, every);

  const accept = async () => {
    for await (const client of listener) {
      if (open.size >= limits.maxConnections) {
        try {
          client.close();
        } catch { /* gone */ }
        continue;
      }
      const now = performance.now();
      const conn: Connection = {
        client,
        upstream: undefined,
        peer: client.remoteAddr as Deno.NetAddr,
        inFlight: 0,
        idleSince: now,
        startedAt: 0,
        served: false,
        lastActivity: now,
        closed: false,
        lingerUntil: 0,
        ended: Promise.resolve(),
      };
      open.add(conn);
      // Small responses go out at once (Nagle's delay would meet the client's delayed ACK).
      if ("setNoDelay" in client) (client as Deno.TcpConn).setNoDelay(true);
      connectUpstream(conn);
    }
  };
  const connectUpstream = async (conn: Connection) => {
    try {
      const upstream = await Deno.connect({ hostname: "127.0.0.1", port: innerPort });
      conn.upstream = upstream;
      if (conn.closed) return close(conn);
      upstream.setNoDelay(true);
      byRelayPort.set((upstream.localAddr as Deno.NetAddr).port, conn);
      conn.ended = Promise.all([
        relay(conn, conn.client, upstream, true),
        relay(conn, upstream, conn.client, false),
      ]).then(() => close(conn));
    } catch {
      close(conn);
    }
  };
  const accepting = accept().catch(() => {});
  options.onListen?.(addr);

  let stopping: Promise<void> | undefined;
  const shutdown = () =>
    stopping ??= (async () => {
      try {
        listener.close();
      } catch { /* closed */ }
      await accepting;
      // The inner server finishes the requests in flight and closes its side of every
      // connection; each relay passes on what is left of its response, then closes.
      await inner.shutdown();
      await Promise.all([...open].map((conn) => conn.ended));
      clearInterval(timer);
    })();
  const finished = inner.finished.then(async () => {
    await shutdown();
  });
  return { addr, finished, shutdown };
}
