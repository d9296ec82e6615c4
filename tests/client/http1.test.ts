import assert from "node:assert/strict";
import { viewReader } from "../../src/client/byte_streams.ts";
import { Http1Connections, parseHead, RawResponse } from "../../src/client/http1.ts";
import { RegistryClient } from "../../src/client/registry_client.ts";
import { digestBytes } from "../../src/oci/digest.ts";
import { startFake } from "./fake_server.ts";

/** A raw HTTP/1.1 server: `answer` gives the bytes to send for the n-th request of a connection. */
function rawServer(
  answer: (request: string, index: number) => { bytes: string; close?: boolean },
) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let connections = 0;
  const open = new Set<Deno.Conn>();
  const serving = (async () => {
    for await (const conn of listener) {
      connections++;
      open.add(conn);
      (async () => {
        const buffer = new Uint8Array(65536);
        let text = "";
        let index = 0;
        try {
          while (true) {
            const n = await conn.read(buffer);
            if (n === null) break;
            text += new TextDecoder().decode(buffer.subarray(0, n));
            let end: number;
            while ((end = text.indexOf("\r\n\r\n")) >= 0) {
              const head = text.slice(0, end);
              const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
              if (text.length < end + 4 + length) break;
              text = text.slice(end + 4 + length);
              const { bytes, close } = answer(head, index++);
              await conn.write(new TextEncoder().encode(bytes));
              if (close) throw new Error("closed");
            }
          }
        } catch { /* closed */ }
        open.delete(conn);
        try {
          conn.close();
        } catch { /* closed */ }
      })();
    }
  })().catch(() => {});
  const { port } = listener.addr as Deno.NetAddr;
  return {
    url: new URL(`http://127.0.0.1:${port}/`),
    connections: () => connections,
    async close() {
      listener.close();
      for (const conn of open) {
        try {
          conn.close();
        } catch { /* closed */ }
      }
      await serving;
    },
  };
}

Deno.test("http1: requests in sequence share one kept-alive connection", async () => {
  const blob = new TextEncoder().encode("a blob of some bytes");
  const digest = digestBytes(blob).value;
  const ports: number[] = [];
  const server = await startFake(async (request, url, info) => {
    ports.push(info.remoteAddr.port);
    await request.body?.cancel();
    if (url.pathname === "/v2/") return new Response("{}");
    if (url.pathname.endsWith(`/blobs/${digest}`)) return new Response(blob);
    if (url.pathname.endsWith("/blobs/uploads/")) {
      return new Response(null, { status: 202, headers: { Location: "/v2/r/blobs/uploads/1" } });
    }
    if (request.method === "PUT") return new Response(null, { status: 201 });
    return new Response(null, { status: 404 });
  });
  const client = new RegistryClient({ registry: server.url });
  try {
    assert.equal(await client.hasBlob("r", digest), true);
    const stream = await client.getBlob("r", { digest, size: blob.byteLength });
    assert.deepEqual(new Uint8Array(await new Response(stream).arrayBuffer()), blob);
    assert.equal(await client.hasBlob("r", digest), true);
    const outcome = await client.pushBlob(
      "r",
      { digest, size: blob.byteLength },
      () => Promise.resolve(new Response(blob).body!),
      { checked: true },
    );
    assert.equal(outcome, "uploaded");
    const first = new Set(ports.slice(0, 6)).size;
    assert.equal(first, 1, `${first} connections for 6 requests in sequence`);
    // After its first upload the client asks whether the repository mounts from itself (a POST
    // ?mount=, here answered 202) and cancels that session (DELETE).
    assert.deepEqual(server.seen.slice(6).map((s) => s.method), ["POST", "DELETE"]);
    assert.equal(server.seen.length, 8);
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("http1: a kept-alive connection the server dropped is replaced, the request sent again", async () => {
  // Answers one request per connection, then closes without saying so.
  const server = rawServer((_request, index) => ({
    bytes: index === 0 ? "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" : "",
    close: true,
  }));
  const connections = new Http1Connections();
  try {
    for (let i = 0; i < 3; i++) {
      const response = await connections.request("GET", server.url, {});
      assert.equal(await response.text(), "ok");
      // Let the server's close arrive before the next request picks the connection.
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(server.connections(), 3);
  } finally {
    connections.close();
    await server.close();
  }
});

Deno.test("http1: a body not read to its end closes its connection; the next answer is whole", async () => {
  const big = "x".repeat(300_000);
  const server = rawServer((request) => {
    const body = request.startsWith("GET /big") ? big : "small";
    const head = `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`;
    return { bytes: request.startsWith("HEAD") ? head : head + body };
  });
  const connections = new Http1Connections();
  try {
    const first = await connections.request("GET", new URL("/big", server.url), {});
    const reader = first.body!.getReader();
    await reader.read();
    await reader.cancel();
    const second = await connections.request("GET", new URL("/small", server.url), {});
    assert.equal(await second.text(), "small");
    const third = await connections.request("HEAD", new URL("/small", server.url), {});
    assert.equal(third.status, 200);
    const fourth = await connections.request("GET", new URL("/small", server.url), {});
    assert.equal(await fourth.text(), "small");
    // The cancelled body's connection was closed; the others were reused.
    assert.equal(server.connections(), 2);
  } finally {
    connections.close();
    await server.close();
  }
});

Deno.test("http1: a body read through its view reader fills the reader's own buffer; a cancel after its end keeps the connection", async () => {
  const big = "y".repeat(300_000);
  const server = rawServer((request) => {
    const body = request.startsWith("GET /big") ? big : "small";
    return { bytes: `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}` };
  });
  const connections = new Http1Connections();
  try {
    const response = await connections.request("GET", new URL("/big", server.url), {});
    const reader = viewReader(response.body!);
    const buffer = new ArrayBuffer(64 * 1024);
    let text = "";
    while (true) {
      const { done, value } = await reader.read(new Uint8Array(buffer));
      // Read in place: the buffer is neither transferred nor replaced.
      assert.equal(value.buffer, buffer);
      assert.equal(buffer.byteLength, 64 * 1024);
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    assert.equal(text, big);
    await reader.cancel();
    const next = await connections.request("GET", new URL("/small", server.url), {});
    assert.equal(await next.text(), "small");
    assert.equal(server.connections(), 1);
  } finally {
    connections.close();
    await server.close();
  }
});

Deno.test("http1: a body stream that fails midway fails the request (the server still waits)", async () => {
  // Answers only once the whole announced body has arrived.
  const server = rawServer(() => ({ bytes: "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n" }));
  const connections = new Http1Connections();
  try {
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 65536) throw new Error("the source broke");
        sent += 16384;
        controller.enqueue(new Uint8Array(16384));
      },
    });
    const guard = Promise.withResolvers<never>();
    const timer = setTimeout(() => guard.reject(new Error("the request hung")), 10_000);
    try {
      await assert.rejects(
        Promise.race([
          connections.request("PUT", server.url, {}, { length: 1 << 20, source: body }),
          guard.promise,
        ]),
        /the source broke/,
      );
    } finally {
      clearTimeout(timer);
    }
  } finally {
    connections.close();
    await server.close();
  }
});

Deno.test("http1: a response head's headers read by any case, repeated ones joined; a body that came with the head reads whole", async () => {
  const { status, headers } = parseHead(
    'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm="a"\r\n' +
      'www-authenticate: Basic realm="b"\r\nContent-Length: 5',
  );
  assert.equal(status, 401);
  assert.equal(headers.get("WWW-Authenticate"), 'Bearer realm="a", Basic realm="b"');
  assert.equal(headers.get("content-length"), "5");
  assert.equal(headers.has("Location"), false);
  assert.equal(headers.get("Location"), null);
  const bytes = new TextEncoder().encode('{"a":1}');
  assert.deepEqual(await new RawResponse(200, headers, bytes).json(), { a: 1 });
  const streamed = new RawResponse(200, headers, bytes);
  assert.equal(streamed.ok, true);
  const reader = streamed.body!.getReader({ mode: "byob" });
  const first = await reader.read(new Uint8Array(4));
  assert.equal(new TextDecoder().decode(first.value), '{"a"');
  const rest = await reader.read(new Uint8Array(16));
  assert.equal(new TextDecoder().decode(rest.value), ":1}");
  assert.equal((await reader.read(new Uint8Array(16))).done, true);
  assert.equal(new RawResponse(204, headers, null).body, null);
  assert.equal(await new RawResponse(404, headers, null).text(), "");
});
