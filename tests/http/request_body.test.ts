/**
 * Chunked request bodies on the wire: chunk heads parsed where they lie in the connection's buffer
 * (plain sizes) and through the line reader (extensions, the last chunk, heads split across reads)
 * give the same bytes and refuse the same malformed input.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type HttpHandler, serveHttp } from "../../src/http/server.ts";

const enc = new TextEncoder();

/** Answers with the body's length and a checksum, or 400 with the error when reading fails. */
const measure: HttpHandler = async (request) => {
  try {
    const body = new Uint8Array(await request.arrayBuffer());
    const sum = body.reduce((a, b) => (a * 31 + b) % 1_000_003, 7);
    return new Response(`${body.length} ${sum}`);
  } catch (error) {
    return new Response(String(error), { status: 400 });
  }
};

function checksum(bytes: Uint8Array): number {
  return bytes.reduce((a, b) => (a * 31 + b) % 1_000_003, 7);
}

/** Send a chunked PATCH in `pieces` (each its own write, a pause between), read the answer. */
async function send(pieces: string[]): Promise<string> {
  const server = serveHttp({ hostname: "127.0.0.1", port: 0 }, measure);
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
    try {
      await conn.write(
        enc.encode("PATCH /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"),
      );
      for (const piece of pieces) {
        await conn.write(enc.encode(piece));
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      // The answer: its head, then as many bytes as its Content-Length says.
      const buffer = new Uint8Array(4096);
      let text = "";
      for (;;) {
        const end = text.indexOf("\r\n\r\n");
        const length = Number(/content-length: (\d+)/i.exec(text)?.[1]);
        if (end >= 0 && text.length >= end + 4 + length) return text;
        const n = await conn.read(buffer);
        if (n === null) return text;
        text += new TextDecoder().decode(buffer.subarray(0, n));
      }
    } finally {
      conn.close();
    }
  } finally {
    await server.shutdown();
  }
}

Deno.test("request body: chunk heads split anywhere across reads decode to the same bytes", async () => {
  const data = "0123456789abcdef".repeat(4) + "x".repeat(31) + "y".repeat(10) + "tail";
  const body = `00040\r\n${data.slice(0, 64)}\r\n1f\r\n${data.slice(64, 95)}\r\n` +
    `A\r\n${data.slice(95, 105)}\r\n4;name=value\r\n${
      data.slice(105)
    }\r\n0\r\nX-Trailer: 1\r\n\r\n`;
  const expected = `200 OK[^]*\r\n\r\n${data.length} ${checksum(enc.encode(data))}$`;
  // Whole, then cut at every offset of the first 20 bytes and around each chunk boundary.
  const cuts = [
    0,
    ...Array.from({ length: 20 }, (_, i) => i + 1),
    71,
    72,
    73,
    74,
    75,
    76,
    111,
    112,
    113,
    114,
    115,
    128,
  ];
  for (const cut of cuts) {
    const pieces = cut === 0 ? [body] : [body.slice(0, cut), body.slice(cut)];
    assert.match(await send(pieces), new RegExp(expected), `cut at ${cut}`);
  }
});

Deno.test("request body: malformed chunk heads are refused however they arrive", async () => {
  const cases = [
    "0000000000003\r\nabc\r\n0\r\n\r\n", // 13 hex digits
    "3 x\r\nabc\r\n0\r\n\r\n",
    "3\rabc\r\n0\r\n\r\n",
    "3\r\nabcd\r\n0\r\n\r\n", // data longer than its size
    "3\r\nabc\n0\r\n\r\n",
    "+3\r\nabc\r\n0\r\n\r\n",
  ];
  for (const broken of cases) {
    for (const pieces of [[broken], [broken.slice(0, 3), broken.slice(3)]]) {
      const text = await send(pieces);
      assert.match(text, /^HTTP\/1\.1 400 /, JSON.stringify(pieces));
      assert.match(text, /chunk|line/, JSON.stringify(pieces));
    }
  }
});
