/**
 * A tiny HTTP server for client tests (a registry that misbehaves on purpose): 127.0.0.1, an
 * ephemeral port, a handler given by the test, every request recorded.
 *
 * @module
 */

/** A recorded request. */
export interface Seen {
  /** Method. */
  method: string;
  /** Path and query. */
  path: string;
  /** Headers. */
  headers: Headers;
}

/** A running fake server. */
export interface FakeServer {
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** `127.0.0.1:PORT`. */
  host: string;
  /** Requests in order. */
  seen: Seen[];
  /** Stop it. */
  close(): Promise<void>;
}

/** Start a fake server with `handler`. */
export async function startFake(
  handler: (
    request: Request,
    url: URL,
    info: Deno.ServeHandlerInfo<Deno.NetAddr>,
  ) => Response | Promise<Response>,
): Promise<FakeServer> {
  const seen: Seen[] = [];
  const { promise, resolve } = Promise.withResolvers<number>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: ({ port }) => resolve(port) },
    (request, info) => {
      const url = new URL(request.url);
      seen.push({
        method: request.method,
        path: `${url.pathname}${url.search}`,
        headers: request.headers,
      });
      return handler(request, url, info);
    },
  );
  const port = await promise;
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    seen,
    close: () => server.shutdown(),
  };
}
