/**
 * The HTTP/1.1 server on the wire: pipelined requests answered in order, bodies by length and
 * chunked (extensions, trailers), `100 Continue` only when the body is read, refusals (414, 431,
 * 400 for smuggling shapes, 405 for methods a Request cannot carry), HEAD and 304 without a
 * body, lengths measured or chunked, HTTP/1.0 keep-alive, a client that goes away, file bodies
 * sent from the file, and a graceful shutdown.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  type HttpHandler,
  type HttpServer,
  serveHttp,
  serveRequests,
} from "../../src/http/server.ts";
import { FileStream } from "../../src/storage/drivers/fs/file_stream.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

async function withServer(
  handler: HttpHandler,
  run: (port: number, server: HttpServer) => Promise<void>,
): Promise<void> {
  const server = serveHttp({ hostname: "127.0.0.1", port: 0 }, handler);
  try {
    await run(server.addr.port, server);
  } finally {
    await server.shutdown();
  }
}

/** Send `text` (string pieces written one by one), then read until the server closes. */
async function exchange(port: number, ...pieces: (string | Uint8Array)[]): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const watchdog = setTimeout(() => conn.close(), 5000);
  try {
    for (const piece of pieces) {
      await conn.write(typeof piece === "string" ? enc.encode(piece) : piece);
    }
    let text = "";
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await conn.read(buffer);
        if (n === null) break;
        text += dec.decode(buffer.subarray(0, n));
      }
    } catch { /* reset or closed by the watchdog */ }
    return text;
  } finally {
    clearTimeout(watchdog);
    try {
      conn.close();
    } catch { /* closed */ }
  }
}

/** Echo the method, path and body. */
const echo: HttpHandler = async (request) => {
  const body = request.body ? await request.text() : "";
  return new Response(`${request.method} ${new URL(request.url).pathname} [${body}]`);
};

const statuses = (text: string) =>
  [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));

Deno.test("server: pipelined requests are answered in order on one connection", async () => {
  await withServer(echo, async (port) => {
    const text = await exchange(
      port,
      "GET /one HTTP/1.1\r\nHost: x\r\n\r\nPUT /two HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc" +
        "GET /three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    const bodies = [...text.matchAll(/\r\n\r\n([A-Z]+ \/\w+ \[\w*\])/g)].map((m) => m[1]);
    assert.deepEqual(bodies, ["GET /one []", "PUT /two [abc]", "GET /three []"]);
    assert.match(text, /connection: close\r\n/);
  });
});

Deno.test("server: a chunked body is decoded (extensions, trailers) and the next request follows", async () => {
  await withServer(echo, async (port) => {
    const text = await exchange(
      port,
      "PATCH /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n",
      "A\r\n0123456789\r\n0\r\nX-Sum: 1\r\n\r\n",
      "GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert.match(text, /PATCH \/up \[abc0123456789\]/);
    assert.match(text, /GET \/after \[\]/);
  });
});

Deno.test("server: after a large chunked body, pipelined requests sent with it still follow", async () => {
  // The connection's buffer grows for a chunked body and shrinks back when it ends: bytes of the
  // requests after it, sent in the same writes, must survive both (a small and a large rest).
  const sized: HttpHandler = async (request) => {
    const body = request.body ? new Uint8Array(await request.arrayBuffer()) : new Uint8Array();
    const sum = body.reduce((a, b) => (a + b) % 65536, 0);
    return new Response(`${request.method} ${new URL(request.url).pathname} ${body.length} ${sum}`);
  };
  const piece = "x".repeat(50 * 1024);
  const chunked = `${(50 * 1024).toString(16)}\r\n${piece}\r\n`.repeat(6) + "0\r\n\r\n";
  const expectedSum = (6 * 50 * 1024 * 120) % 65536;
  await withServer(sized, async (port) => {
    const text = await exchange(
      port,
      `PATCH /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${chunked}` +
        "GET /b HTTP/1.1\r\nHost: x\r\n\r\n" +
        `PUT /c HTTP/1.1\r\nHost: x\r\nContent-Length: 40000\r\n\r\n${"y".repeat(40000)}` +
        `PATCH /d HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${chunked}` +
        "GET /e HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    const bodies = [...text.matchAll(/\r\n\r\n([A-Z]+ \/\w \d+ \d+)/g)].map((m) => m[1]);
    assert.deepEqual(bodies, [
      `PATCH /a ${6 * 50 * 1024} ${expectedSum}`,
      "GET /b 0 0",
      `PUT /c 40000 ${(40000 * 121) % 65536}`,
      `PATCH /d ${6 * 50 * 1024} ${expectedSum}`,
      "GET /e 0 0",
    ]);
  });
});

Deno.test("server: broken chunking fails the body and ends the connection", async () => {
  for (const broken of ["zz\r\nabc\r\n0\r\n\r\n", "3\r\nabcd\r\n0\r\n\r\n", "-1\r\n\r\n"]) {
    let failure = "";
    const handler: HttpHandler = async (request) => {
      try {
        await request.text();
      } catch (error) {
        failure = String(error);
        return new Response("bad body", { status: 400 });
      }
      return new Response("read");
    };
    await withServer(handler, async (port) => {
      const text = await exchange(
        port,
        `PATCH /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${broken}` +
          "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
      );
      assert.deepEqual(statuses(text), [400], JSON.stringify(broken));
      assert.match(text, /connection: close/);
      assert.match(failure, /chunk/);
    });
  }
});

Deno.test("server: 100 Continue is sent when the handler reads the body, not before", async () => {
  await withServer(async (request) => {
    if (new URL(request.url).pathname === "/refuse") {
      return new Response("no", { status: 413 });
    }
    return new Response(await request.text());
  }, async (port) => {
    const put = (path: string) =>
      `PUT ${path} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n`;
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      await conn.write(enc.encode(put("/read")));
      const buffer = new Uint8Array(4096);
      const n = await conn.read(buffer);
      assert.equal(dec.decode(buffer.subarray(0, n!)), "HTTP/1.1 100 Continue\r\n\r\n");
      await conn.write(enc.encode("ok"));
      const m = await conn.read(buffer);
      assert.match(dec.decode(buffer.subarray(0, m!)), /^HTTP\/1\.1 200 OK[^]*\r\n\r\nok$/);
    } finally {
      conn.close();
    }
    const refused = await exchange(port, put("/refuse"));
    assert.doesNotMatch(refused, /100 Continue/);
    assert.match(refused, /^HTTP\/1\.1 413 [^]*connection: close\r\n/);
  });
});

Deno.test("server: refusals before the handler: 414, 431, 400, 405", async () => {
  let called = 0;
  await withServer(() => {
    called++;
    return new Response("handled");
  }, async (port) => {
    const cases: [string, number][] = [
      [`GET /${"a".repeat(9000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 414],
      [`GET / HTTP/1.1\r\nHost: x\r\n${"X-A: b\r\n".repeat(10_000)}\r\n`, 431],
      [
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        400,
      ],
      ["GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400],
      ["GET / HTTP/1.1\r\n\r\n", 400],
      ["GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400],
      ["TRACE / HTTP/1.1\r\nHost: x\r\n\r\n", 405],
      ["CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n", 400],
      ["GET / HTTP/3.0\r\nHost: x\r\n\r\n", 400],
    ];
    for (const [request, status] of cases) {
      const text = await exchange(port, request + "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
      assert.deepEqual(statuses(text), [status], request.slice(0, 60));
      assert.match(text, /connection: close\r\n/);
    }
    assert.equal(called, 0);
  });
});

Deno.test("server: a refused HEAD gets the refusal's head and no body", async () => {
  let called = 0;
  await withServer(() => {
    called++;
    return new Response("handled");
  }, async (port) => {
    const cases: [string, number][] = [
      [`HEAD /${"a".repeat(9000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 414],
      [`HEAD / HTTP/1.1\r\nHost: x\r\n${"X-A: b\r\n".repeat(10_000)}\r\n`, 431],
      ["HEAD / HTTP/1.1\r\n\r\n", 400],
      ["HEAD / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab", 400],
    ];
    for (const [request, status] of cases) {
      const text = await exchange(port, request);
      assert.deepEqual(statuses(text), [status], request.slice(0, 60));
      assert.match(text, /content-length: \d+\r\n/);
      assert.ok(text.endsWith("\r\n\r\n"), `no body after the head: ${JSON.stringify(text)}`);
    }
    // The same refusal of a GET carries its message.
    assert.match(await exchange(port, "GET / HTTP/1.1\r\n\r\n"), /\r\n\r\n.+\n$/);
    assert.equal(called, 0);
  });
});

Deno.test("server: a request's path is its URL's path, whether the URL is parsed at once or later", async () => {
  const server = serveRequests({ hostname: "127.0.0.1", port: 0 }, (request) => {
    const url = request.parsedUrl;
    return new Response(`${request.path === url.pathname}|${url.pathname}|${url.search}\n`);
  });
  try {
    const get = (target: string, host = "x") => `GET ${target} HTTP/1.1\r\nHost: ${host}\r\n\r\n`;
    const text = await exchange(
      server.addr.port,
      get("/v2/a/b") + get("/v2/a/b") + get("/v2/a/./b/../c") + get("/v2/%61/.x") +
        get("/v2/a?n=1") + get("//v2//a") + get("/v2/a", "Y:5000") + get("/v2/a", "999.1.1.1"),
    );
    const bodies = text.split("\r\n\r\n").slice(1).map((part) => part.split("\n")[0]);
    assert.deepEqual(bodies.slice(0, 7), [
      "true|/v2/a/b|",
      "true|/v2/a/b|",
      "true|/v2/a/c|",
      "true|/v2/%61/.x|",
      "true|/v2/a|?n=1",
      "true|//v2//a|",
      "true|/v2/a|",
    ]);
    // A host no URL can hold is refused, after others were accepted on the connection.
    assert.deepEqual(statuses(text), [200, 200, 200, 200, 200, 200, 200, 400]);
  } finally {
    await server.shutdown();
  }
});

Deno.test("server: unknown methods and absolute-form targets reach the handler", async () => {
  await withServer(echo, async (port) => {
    const text = await exchange(
      port,
      "PROPFIND http://elsewhere/abs HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert.match(text, /PROPFIND \/abs \[\]/);
  });
});

Deno.test("server: HEAD, 204 and 304 carry no body; HEAD keeps the declared length", async () => {
  await withServer((request) => {
    const path = new URL(request.url).pathname;
    if (path === "/204") return new Response(null, { status: 204 });
    if (path === "/304") return new Response(null, { status: 304, headers: { ETag: '"e"' } });
    return new Response(request.method === "HEAD" ? null : "12345", {
      headers: { "Content-Length": "5" },
    });
  }, async (port) => {
    const text = await exchange(
      port,
      "HEAD /a HTTP/1.1\r\nHost: x\r\n\r\nGET /204 HTTP/1.1\r\nHost: x\r\n\r\n" +
        "GET /304 HTTP/1.1\r\nHost: x\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    const responses = text.split(/(?=HTTP\/1\.1 )/);
    assert.equal(responses.length, 4, text);
    assert.match(responses[0]!, /^HTTP\/1\.1 200 OK\r\n[^]*content-length: 5\r\n\r\n$/);
    assert.match(responses[1]!, /^HTTP\/1\.1 204 No Content\r\n[^]*\r\n\r\n$/);
    assert.doesNotMatch(responses[1]!, /content-length/);
    assert.match(responses[2]!, /^HTTP\/1\.1 304 Not Modified\r\n[^]*etag: "e"\r\n[^]*\r\n\r\n$/);
    assert.match(responses[3]!, /\r\n\r\n12345$/);
  });
});

Deno.test("server: header values go out byte for byte, beside ASCII ones and a body", async () => {
  await withServer((request) => {
    const path = new URL(request.url).pathname;
    return new Response(path === "/empty" ? null : "body", {
      headers: { "X-Obs": "caf\xe9 \xff", "Content-Length": path === "/empty" ? "0" : "4" },
    });
  }, async (port) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      await conn.write(
        enc.encode(
          "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /empty HTTP/1.1\r\nHost: x\r\n\r\n" +
            "HEAD /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        ),
      );
      const chunks: number[] = [];
      const buffer = new Uint8Array(4096);
      for (let n; (n = await conn.read(buffer)) !== null;) chunks.push(...buffer.subarray(0, n));
      const text = String.fromCharCode(...chunks);
      const answers = text.split(/(?=HTTP\/1\.1 )/);
      assert.equal(answers.length, 3, text);
      for (const answer of answers) assert.match(answer, /\r\nx-obs: caf\xe9 \xff\r\n/);
      assert.match(answers[0]!, /\r\n\r\nbody$/);
      for (const [i, length] of [[1, 0], [2, 4]] as const) {
        assert.match(answers[i]!, new RegExp(`\r\ncontent-length: ${length}\r\n`));
        assert.ok(answers[i]!.endsWith("\r\n\r\n"), "no body");
      }
    } finally {
      conn.close();
    }
  });
});

Deno.test("server: bodies without a length are measured when small, chunked when large", async () => {
  const large = "x".repeat(200_000);
  await withServer((request) => {
    const text = new URL(request.url).pathname === "/large" ? large : "small";
    return new Response(new Blob([text]).stream());
  }, async (port) => {
    const small = await exchange(
      port,
      "GET /small HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert.match(small, /content-length: 5\r\n[^]*\r\n\r\nsmall$/);
    const chunked = await exchange(
      port,
      "GET /large HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert.match(chunked, /transfer-encoding: chunked\r\n/);
    const body = chunked.slice(chunked.indexOf("\r\n\r\n") + 4);
    let decoded = "";
    let rest = body;
    for (;;) {
      const line = rest.indexOf("\r\n");
      const size = parseInt(rest.slice(0, line), 16);
      if (size === 0) break;
      decoded += rest.slice(line + 2, line + 2 + size);
      rest = rest.slice(line + 4 + size);
    }
    assert.equal(decoded, large);
    const old = await exchange(port, "GET /large HTTP/1.0\r\n\r\n");
    assert.match(old, /connection: close\r\n/);
    assert.ok(old.endsWith(`\r\n\r\n${large}`), "HTTP/1.0: the body runs to the close");
  });
});

Deno.test("server: HTTP/1.0 keep-alive is answered with Connection: keep-alive", async () => {
  await withServer(echo, async (port) => {
    const text = await exchange(
      port,
      "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n",
    );
    assert.deepEqual(statuses(text), [200, 200]);
    assert.match(text, /connection: keep-alive\r\n[^]*GET \/a[^]*connection: close\r\n[^]*GET \/b/);
  });
});

Deno.test("server: a client that goes away mid-body fails the body and aborts the signal", async () => {
  const { promise: outcome, resolve } = Promise.withResolvers<string>();
  await withServer(async (request) => {
    try {
      await request.arrayBuffer();
      resolve("read");
    } catch {
      resolve(`failed, aborted: ${request.signal.aborted}`);
    }
    return new Response("late");
  }, async (port) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(enc.encode("PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc"));
    conn.close();
    assert.equal(await outcome, "failed, aborted: true");
  });
});

Deno.test("server: a file body is sent from the file, ranges exact, the file closed", async () => {
  const path = await Deno.makeTempFile();
  const bytes = new Uint8Array(3 * 1024 * 1024 + 17).map((_, i) => (i * 7) & 0xff);
  await Deno.writeFile(path, bytes);
  const opened: Deno.FsFile[] = [];
  try {
    await withServer(async (request) => {
      const [start, length] = new URL(request.url).searchParams.get("r")!.split(",").map(Number);
      const file = await Deno.open(path);
      opened.push(file);
      await file.seek(start!, Deno.SeekMode.Start);
      return new Response(new FileStream(file, length!), {
        headers: { "Content-Length": String(length) },
      });
    }, async (port) => {
      for (const [start, length] of [[0, bytes.length], [1000, 2 * 1024 * 1024 + 5], [5, 10]]) {
        const response = await fetch(`http://127.0.0.1:${port}/f?r=${start},${length}`);
        const got = new Uint8Array(await response.arrayBuffer());
        assert.equal(got.length, length);
        assert.deepEqual(got, bytes.subarray(start!, start! + length!));
      }
    });
    for (const file of opened) assert.throws(() => file.statSync(), "closed after sending");
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("server: a client that goes away mid-file ends the send and the file is closed", async () => {
  const path = await Deno.makeTempFile();
  // Far more than the socket buffers hold while the client reads nothing.
  const bytes = new Uint8Array(24 * 1024 * 1024).map((_, i) => (i * 13) & 0xff);
  await Deno.writeFile(path, bytes);
  const opened: Deno.FsFile[] = [];
  try {
    await withServer(async (request) => {
      const length = Number(new URL(request.url).searchParams.get("n"));
      const file = await Deno.open(path);
      opened.push(file);
      return new Response(new FileStream(file, length), {
        headers: { "Content-Length": String(length) },
      });
    }, async (port) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(enc.encode(`GET /f?n=${bytes.length} HTTP/1.1\r\nHost: x\r\n\r\n`));
      const first = new Uint8Array(64 * 1024);
      assert.ok((await conn.read(first))! > 0);
      conn.close();
      // The server goes on serving: the next file is whole.
      const response = await fetch(`http://127.0.0.1:${port}/f?n=${3 << 20}`);
      assert.deepEqual(new Uint8Array(await response.arrayBuffer()), bytes.subarray(0, 3 << 20));
    });
    assert.equal(opened.length, 2);
    for (const file of opened) assert.throws(() => file.statSync(), "closed after the send ends");
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("server: a file source failing while a write is in progress ends the answer, not the server", async () => {
  let closed = 0;
  // The first read fills the buffer; the next one, started while that is written, fails at once.
  const failing = () => {
    let reads = 0;
    return {
      read(p: Uint8Array): Promise<number | null> {
        if (reads++ > 0) return Promise.reject(new Error("the upstream failed"));
        p.fill(7);
        return Promise.resolve(p.length);
      },
      close() {
        closed++;
      },
    };
  };
  await withServer((request) => {
    if (new URL(request.url).pathname === "/ok") return new Response("fine");
    return new Response(new FileStream(failing(), 8 << 20), {
      headers: { "Content-Length": String(8 << 20) },
    });
  }, async (port) => {
    const text = await exchange(port, "GET /fail HTTP/1.1\r\nHost: x\r\n\r\n");
    assert.match(text, /^HTTP\/1\.1 200 OK/);
    assert.ok(text.length < 8 << 20, "the answer is cut short");
    const response = await fetch(`http://127.0.0.1:${port}/ok`);
    assert.equal(await response.text(), "fine");
  });
  assert.equal(closed, 1);
});

Deno.test("server: shutdown lets the request in flight finish and closes idle connections", async () => {
  const { promise: release, resolve } = Promise.withResolvers<void>();
  const { promise: entered, resolve: enter } = Promise.withResolvers<void>();
  await withServer(async () => {
    enter();
    await release;
    return new Response("finished");
  }, async (port, server) => {
    const idle = await Deno.connect({ hostname: "127.0.0.1", port });
    const answer = exchange(port, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
    await entered;
    const stopping = server.shutdown();
    const buffer = new Uint8Array(16);
    assert.equal(await idle.read(buffer), null, "the idle connection is closed");
    idle.close();
    resolve();
    const text = await answer;
    assert.match(text, /^HTTP\/1\.1 200 OK[^]*connection: close\r\n[^]*finished$/);
    await stopping;
  });
});

Deno.test("server: a TLS handshake on the plain port is refused at once, not left to time out", async () => {
  await withServer(echo, async (port) => {
    // The start of a TLS ClientHello: record type 0x16, version, length; no line end follows.
    const text = await exchange(port, new Uint8Array([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00]));
    assert.deepEqual(statuses(text), [400]);
  });
});
