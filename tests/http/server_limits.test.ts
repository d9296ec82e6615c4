/**
 * Connection limits of the HTTP server: connections whose request headers trickle in are closed at the header
 * timeout, idle keep-alive connections at the idle timeout, connections beyond the cap at once;
 * requests in between are served as usual, with the client's real address. Also through
 * `berth serve` with its flags.
 *
 * @module
 */
import assert from "node:assert/strict";
import { serveHttp } from "../../src/http/server.ts";
import { spawnServer } from "../helpers/server.ts";

const encoder = new TextEncoder();

/** Resolves with the milliseconds until the server closes `conn` (reads are discarded). */
async function closedAfter(conn: Deno.Conn, started: number): Promise<number> {
  const buffer = new Uint8Array(4096);
  try {
    while ((await conn.read(buffer)) !== null);
  } catch { /* reset counts as closed */ }
  return performance.now() - started;
}

/** Open `count` connections that send a header line every `everyMs` and never finish. */
async function trickle(port: number, count: number, everyMs: number, limitMs: number) {
  const started = performance.now();
  const conns = await Promise.all(
    Array.from({ length: count }, () => Deno.connect({ hostname: "127.0.0.1", port })),
  );
  let line = 0;
  const send = () => {
    for (const conn of conns) {
      const text = line === 0 ? "GET /v2/ HTTP/1.1\r\nHost: x\r\n" : `X-Line-${line}: y\r\n`;
      conn.write(encoder.encode(text)).catch(() => {});
    }
    line++;
  };
  send();
  const timer = setInterval(send, everyMs);
  const watchdog = setTimeout(() => conns.forEach((c) => c.close()), limitMs * 4);
  try {
    return await Promise.all(conns.map((conn) => closedAfter(conn, started)));
  } finally {
    clearInterval(timer);
    clearTimeout(watchdog);
    for (const conn of conns) {
      try {
        conn.close();
      } catch { /* closed by the server */ }
    }
  }
}

/** Send one request on `conn` and read its (small) response. */
async function request(conn: Deno.Conn): Promise<string> {
  await conn.write(encoder.encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  const buffer = new Uint8Array(4096);
  const n = await conn.read(buffer);
  return new TextDecoder().decode(buffer.subarray(0, n ?? 0));
}

Deno.test("server: 20 connections trickling header lines are closed at the header timeout", async () => {
  const server = serveHttp(
    { hostname: "127.0.0.1", port: 0, headerTimeoutMs: 1000 },
    () => new Response("ok"),
  );
  try {
    const times = await trickle(server.addr.port, 20, 300, 1000);
    for (const ms of times) {
      assert.ok(ms >= 900 && ms < 2500, `closed after ${Math.round(ms)} ms`);
    }
  } finally {
    await server.shutdown();
  }
});

Deno.test("server: an idle keep-alive connection is closed at the idle timeout, a busy one is not", async () => {
  let seen: Deno.NetAddr | undefined;
  const server = serveHttp(
    { hostname: "127.0.0.1", port: 0, headerTimeoutMs: 5000, idleTimeoutMs: 800 },
    (_request, info) => {
      seen = info.remoteAddr;
      return new Response("ok");
    },
  );
  const idle = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  const busy = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  try {
    assert.match(await request(idle), /^HTTP\/1\.1 200/);
    assert.equal(seen?.port, (idle.localAddr as Deno.NetAddr).port, "the client's own address");
    const started = performance.now();
    const closing = closedAfter(idle, started);
    // The busy connection sends a request every 300 ms for 2 s: it stays open throughout.
    while (performance.now() - started < 2000) {
      assert.match(await request(busy), /^HTTP\/1\.1 200/);
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    const ms = await closing;
    assert.ok(ms >= 700 && ms < 2000, `idle connection closed after ${Math.round(ms)} ms`);
  } finally {
    idle.close();
    busy.close();
    await server.shutdown();
  }
});

Deno.test("server: connections beyond maxConnections are closed as they arrive", async () => {
  const server = serveHttp(
    { hostname: "127.0.0.1", port: 0, maxConnections: 2 },
    () => new Response("ok"),
  );
  const conns: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
      conns.push(conn);
      assert.match(await request(conn), /^HTTP\/1\.1 200/);
    }
    const extra = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
    conns.push(extra);
    assert.ok((await closedAfter(extra, performance.now())) < 1000);
    conns[0]!.close();
    conns.shift();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const next = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
    conns.push(next);
    assert.match(await request(next), /^HTTP\/1\.1 200/, "a freed slot takes a new connection");
  } finally {
    for (const conn of conns) {
      try {
        conn.close();
      } catch { /* closed */ }
    }
    await server.shutdown();
  }
});

Deno.test("server: berth serve closes trickling connections at --header-timeout", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "berth-accept-" });
  const child = await spawnServer({ dataDir, args: ["--header-timeout", "1s"] });
  try {
    const times = await trickle(Number(new URL(child.url).port), 20, 300, 1000);
    for (const ms of times) {
      assert.ok(ms < 3000, `closed after ${Math.round(ms)} ms`);
    }
    const response = await fetch(`${child.url}/v2/`);
    await response.body?.cancel();
    assert.equal(response.status, 200, "the registry still answers");
  } finally {
    await child.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("server: a client that stops reading a response is disconnected at the write timeout", async () => {
  const size = 256 * 1024 * 1024;
  const piece = new Uint8Array(1024 * 1024);
  let bodyEnded: (reason: string) => void = () => {};
  const ended = new Promise<string>((resolve) => bodyEnded = resolve);
  const server = serveHttp(
    { hostname: "127.0.0.1", port: 0, writeTimeoutMs: 500 },
    () => {
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent === size) {
            controller.close();
            return bodyEnded("complete");
          }
          sent += piece.length;
          controller.enqueue(piece.slice());
        },
        cancel() {
          bodyEnded("cancelled");
        },
      });
      return new Response(body, { headers: { "Content-Length": String(size) } });
    },
  );
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  try {
    await conn.write(encoder.encode("GET /big HTTP/1.1\r\nHost: x\r\n\r\n"));
    // The client reads nothing: the socket buffers fill and the server's write waits.
    const outcome = await Promise.race([
      ended,
      new Promise<string>((resolve) => setTimeout(() => resolve("still waiting"), 5000)),
    ]);
    assert.equal(outcome, "cancelled", "the response is abandoned, not kept waiting");
    let received = 0;
    const buffer = new Uint8Array(1024 * 1024);
    try {
      for (let n; (n = await conn.read(buffer)) !== null;) received += n;
    } catch { /* a reset counts as closed */ }
    assert.ok(received < size, `the client got ${received} of ${size} bytes, then the close`);
  } finally {
    conn.close();
    await server.shutdown();
  }
});
