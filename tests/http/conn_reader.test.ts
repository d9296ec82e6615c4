/**
 * The connection reader's buffer: grown for a chunked body, given back when the body ends.
 *
 * @module
 */
import assert from "node:assert/strict";
import { ConnReader } from "../../src/http/conn_reader.ts";

/** A connection whose reads hand out `pieces` one by one, then the end of the stream. */
function fakeConn(pieces: string[]): Deno.Conn {
  const queue = pieces.map((piece) => new TextEncoder().encode(piece));
  const conn = {
    read(into: Uint8Array): Promise<number | null> {
      const next = queue.shift();
      if (!next) return Promise.resolve(null);
      into.set(next);
      return Promise.resolve(next.byteLength);
    },
  };
  return conn as unknown as Deno.Conn;
}

Deno.test("conn reader: the buffer grown for a chunked body is freed on release; reads go on", async () => {
  const reader = new ConnReader(fakeConn(["body bytes", "next line\r\n"]));
  reader.reserve(2 << 20);
  assert.ok(await reader.more());
  const big = reader.peek();
  assert.equal(big.buffer.byteLength, 2 << 20);
  assert.equal(reader.take(new Uint8Array(big.byteLength)), "body bytes".length);
  reader.release();
  assert.equal((big.buffer as ArrayBuffer).detached, true, "the 2 MiB buffer was given back");
  assert.equal(await reader.readLine(100), "next line");
  assert.ok(reader.peek().buffer.byteLength < 2 << 20);
});
