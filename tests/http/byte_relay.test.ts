import assert from "node:assert/strict";
import { relayBytes } from "../../src/http/byte_relay.ts";

/** A byte stream of `source` that counts how its reads were served. */
function source(bytes: Uint8Array) {
  const stats = { byobReads: 0, largest: 0 };
  let at = 0;
  const stream = new ReadableStream({
    type: "bytes",
    pull(controller) {
      const request = controller.byobRequest!;
      if (at >= bytes.byteLength) {
        controller.close();
        request.respond(0);
        return;
      }
      const view = new Uint8Array(
        request.view!.buffer,
        request.view!.byteOffset,
        request.view!.byteLength,
      );
      const n = Math.min(view.byteLength, bytes.byteLength - at);
      view.set(bytes.subarray(at, at + n));
      at += n;
      stats.byobReads++;
      stats.largest = Math.max(stats.largest, n);
      request.respond(n);
    },
    autoAllocateChunkSize: 1024,
  });
  return { stream, stats };
}

const data = Uint8Array.from({ length: 300_000 }, (_, i) => i % 251);

Deno.test("byte relay: BYOB reads pass through two relays into the reader's buffer", async () => {
  const { stream, stats } = source(data);
  const relayed = relayBytes(relayBytes(stream));
  const reader = relayed.getReader({ mode: "byob" });
  let buffer = new Uint8Array(200_000);
  const got = new Uint8Array(data.byteLength);
  let at = 0;
  while (true) {
    const { done, value } = await reader.read(buffer);
    if (done) break;
    got.set(value, at);
    at += value.byteLength;
    buffer = new Uint8Array(value.buffer);
  }
  assert.equal(at, data.byteLength);
  assert.deepEqual(got, data);
  assert.equal(stats.largest, 200_000, "the reader's 200 kB buffer reached the source");
  assert.equal(stats.byobReads, 2);
});

Deno.test("byte relay: a default reader gets every byte; a plain source is relayed too", async () => {
  for (const body of [source(data).stream, new Response(data).body!]) {
    const bytes = new Uint8Array(await new Response(relayBytes(body)).arrayBuffer());
    assert.deepEqual(bytes, data);
  }
  const plain = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(data.slice(0, 10));
      controller.enqueue(data.slice(10, 20));
      controller.close();
    },
  });
  const reader = relayBytes(plain).getReader({ mode: "byob" });
  const first = await reader.read(new Uint8Array(64));
  assert.deepEqual(first.value, data.slice(0, 10));
});

Deno.test("byte relay: a step that throws fails the stream and cancels the source", async () => {
  let cancelled: unknown;
  const body = new ReadableStream<Uint8Array>({
    type: "bytes",
    pull(controller) {
      controller.enqueue(new Uint8Array(10));
    },
    cancel(reason) {
      cancelled = reason;
    },
  });
  let total = 0;
  const relayed = relayBytes(body, async (read) => {
    const result = await read;
    if (!result.done) total += result.value.byteLength;
    if (total > 25) throw new Error("too large");
    return result;
  });
  await assert.rejects(new Response(relayed).arrayBuffer(), /too large/);
  assert.match(String(cancelled), /too large/);
});
