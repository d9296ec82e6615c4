import assert from "node:assert/strict";
import { sendBytes } from "../../src/storage/drivers/http_put.ts";

/** A server that answers with what it received (method, headers, a digest of the body). */
async function withEcho(
  fn: (url: URL) => Promise<void>,
  answer?: (request: Request, body: Uint8Array) => Response,
): Promise<void> {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (r) => {
    const body = new Uint8Array(await r.arrayBuffer());
    if (answer) return answer(r, body);
    const sha = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
    return Response.json({
      method: r.method,
      path: new URL(r.url).pathname + new URL(r.url).search,
      length: r.headers.get("content-length"),
      chunked: r.headers.get("transfer-encoding"),
      custom: r.headers.get("x-amz-test"),
      size: body.byteLength,
      sha: Array.from(sha, (b) => b.toString(16).padStart(2, "0")).join(""),
    }, { headers: { etag: '"abc"' } });
  });
  try {
    await fn(new URL(`http://127.0.0.1:${server.addr.port}/bucket/key%2Fpart?partNumber=3&x=y`));
  } finally {
    await server.shutdown();
  }
}

Deno.test("sendBytes: the body goes out whole with its length; the answer comes back", async () => {
  const body = new Uint8Array(3 * 1024 * 1024 + 7);
  crypto.getRandomValues(body.subarray(0, 65536));
  body[body.length - 1] = 42;
  const sha = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
  await withEcho(async (url) => {
    const headers = new Headers({ "x-amz-test": "yes", "content-type": "application/x-test" });
    const response = await sendBytes("PUT", url, headers, body, new AbortController().signal);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("etag"), '"abc"');
    const echo = await response.json();
    assert.equal(echo.method, "PUT");
    assert.equal(echo.path, "/bucket/key%2Fpart?partNumber=3&x=y");
    assert.equal(echo.length, String(body.byteLength));
    assert.equal(echo.chunked, null);
    assert.equal(echo.custom, "yes");
    assert.equal(echo.size, body.byteLength);
    assert.equal(echo.sha, Array.from(sha, (b) => b.toString(16).padStart(2, "0")).join(""));
  });
});

Deno.test("sendBytes: error answers, chunked answers and empty answers are read", async () => {
  const xml = "<Error><Code>NoSuchUpload</Code></Error>";
  await withEcho(async (url) => {
    const signal = new AbortController().signal;
    const chunked = await sendBytes("PUT", url, new Headers(), new Uint8Array(10), signal);
    assert.equal(chunked.status, 404);
    assert.equal(await chunked.text(), xml.repeat(3));
    const empty = await sendBytes(
      "PUT",
      new URL("?empty", url),
      new Headers(),
      new Uint8Array(1),
      signal,
    );
    assert.equal(empty.status, 204);
    assert.equal(await empty.text(), "");
  }, (request) => {
    if (new URL(request.url).search === "?empty") return new Response(null, { status: 204 });
    // A stream of unknown length: Deno.serve sends it chunked.
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 3; i++) controller.enqueue(new TextEncoder().encode(xml));
        controller.close();
      },
    });
    return new Response(body, { status: 404 });
  });
});

Deno.test("sendBytes: an abort ends the exchange with the signal's reason", async () => {
  const { promise: arrived, resolve } = Promise.withResolvers<void>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (r) => {
    await r.arrayBuffer();
    resolve();
    // Held until the client goes away.
    await new Promise<void>((done) => {
      const timer = setTimeout(done, 5_000);
      r.signal.addEventListener("abort", () => {
        clearTimeout(timer);
        done();
      });
    });
    return new Response("late");
  });
  try {
    const controller = new AbortController();
    const url = new URL(`http://127.0.0.1:${server.addr.port}/k`);
    const sending = sendBytes("PUT", url, new Headers(), new Uint8Array(100), controller.signal);
    await arrived;
    controller.abort(new Error("timed out"));
    await assert.rejects(sending, /timed out/);
  } finally {
    await server.shutdown();
  }
});

Deno.test("sendBytes: a refused connection throws", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  await assert.rejects(
    sendBytes(
      "PUT",
      new URL(`http://127.0.0.1:${port}/`),
      new Headers(),
      new Uint8Array(1),
      new AbortController().signal,
    ),
  );
});
