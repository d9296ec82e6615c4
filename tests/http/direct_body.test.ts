import assert from "node:assert/strict";
import { concatBytes } from "../../src/bytes.ts";
import { DirectBody, relayDirect } from "../../src/http/direct_body.ts";
import { writeBatched } from "../../src/storage/drivers/batch_writer.ts";
import { SizeMismatch } from "../../src/storage/driver.ts";

/** Deterministic bytes. */
function bytesOf(size: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 13 + 5) & 0xff;
  return bytes;
}

/**
 * A body over `source`, at most `piece` bytes a read; records the space each read was given and
 * the reason it was cancelled with.
 */
function sourceBody(source: Uint8Array, piece: number) {
  let at = 0;
  const offered: number[] = [];
  const cancelled: unknown[] = [];
  const buffers = new Set<ArrayBufferLike>();
  const body = new DirectBody((into) => {
    offered.push(into.byteLength);
    buffers.add(into.buffer);
    if (at >= source.byteLength) return Promise.resolve(null);
    const n = Math.min(piece, into.byteLength, source.byteLength - at);
    into.set(source.subarray(at, at + n));
    at += n;
    return Promise.resolve(n);
  }, (reason) => void cancelled.push(reason));
  return { body, offered, cancelled, buffers };
}

/** A sink keeping what is written. */
function memorySink() {
  const chunks: Uint8Array[] = [];
  return {
    chunks,
    write(bytes: Uint8Array) {
      chunks.push(bytes.slice());
      return Promise.resolve(bytes.byteLength);
    },
    bytes() {
      return concatBytes(chunks, chunks.reduce((size, chunk) => size + chunk.byteLength, 0));
    },
  };
}

Deno.test("direct body: read as a stream, BYOB or by chunks, it gives every byte and ends", async () => {
  const source = bytesOf(200_000);
  const byChunks = await new Response(sourceBody(source, 70_000).body).bytes();
  assert.deepEqual(byChunks, source);

  const reader = sourceBody(source, 70_000).body.getReader({ mode: "byob" });
  const got: number[] = [];
  for (;;) {
    const { done, value } = await reader.read(new Uint8Array(50_000));
    if (done) break;
    got.push(...value);
  }
  assert.deepEqual(new Uint8Array(got), source);
});

Deno.test("direct body: direct reads fill the caller's buffer, end with null and lock the stream", async () => {
  const source = bytesOf(10_000);
  const { body, offered } = sourceBody(source, 4_000);
  const direct = body.direct();
  assert.equal(body.locked, true);
  assert.throws(() => body.getReader(), TypeError);
  assert.throws(() => body.direct(), TypeError);
  const into = new Uint8Array(6_000);
  assert.equal(await direct.read(into), 4_000);
  assert.deepEqual(into.subarray(0, 4_000), source.subarray(0, 4_000));
  assert.equal(await direct.read(into), 4_000);
  assert.equal(await direct.read(into), 2_000);
  assert.equal(await direct.read(into), null);
  assert.deepEqual(offered, [6_000, 6_000, 6_000, 6_000]);
});

Deno.test("direct body: a relay sees each read's count and the end, and stays direct", async () => {
  const source = bytesOf(9_000);
  const seen: (number | null)[] = [];
  const relayed = relayDirect(
    sourceBody(source, 4_000).body,
    async (read) => {
      const n = await read;
      seen.push(n);
      return n;
    },
  );
  const sink = memorySink();
  assert.equal(await writeBatched(relayed, sink), 9_000);
  assert.deepEqual(sink.bytes(), source);
  assert.deepEqual(seen, [4_000, 4_000, 1_000, null]);
});

Deno.test("direct body: a relay step that throws fails the read and cancels the source", async () => {
  const { body, cancelled } = sourceBody(bytesOf(9_000), 4_000);
  const refusal = new Error("too large");
  let reads = 0;
  const relayed = relayDirect(body, async (read) => {
    const n = await read;
    if (++reads === 2) throw refusal;
    return n;
  });
  await assert.rejects(writeBatched(relayed, memorySink()), (error) => error === refusal);
  assert.deepEqual(cancelled, [refusal]);
});

Deno.test("direct body: the batch writer reads it directly, in batches, and refuses a byte too many", async () => {
  const source = bytesOf(3 << 20);
  const { body, offered, buffers } = sourceBody(source, 1 << 20);
  const sink = memorySink();
  assert.equal(await writeBatched(body, sink), source.byteLength);
  assert.deepEqual(sink.bytes(), source);
  // Direct reads into the writer's two batch buffers themselves (a stream's BYOB read would hand
  // over a new, transferred buffer every time).
  assert.equal(offered[0], 2 << 20);
  assert.equal(offered.length, 4);
  assert.equal(buffers.size, 2);
  assert.equal(body.locked, true);

  const short = sourceBody(bytesOf(5_000), 4_000);
  await assert.rejects(
    writeBatched(short.body, memorySink(), { expectedLength: 4_500 }),
    SizeMismatch,
  );
  assert.equal(short.cancelled.length, 1);
});
