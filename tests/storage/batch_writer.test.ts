import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { BufferPool } from "../../src/bytes.ts";
import { WRITE_BATCH, writeBatched } from "../../src/storage/drivers/batch_writer.ts";
import { SizeMismatch } from "../../src/storage/driver.ts";

/** Deterministic bytes. */
function bytesOf(size: number, seed = 1): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + seed * 7) & 0xff;
  return bytes;
}

/** A byte stream (BYOB-capable) handing out `source` in pieces of at most `piece` bytes. */
function byteStream(source: Uint8Array, piece: number): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    type: "bytes",
    pull(controller) {
      if (at >= source.byteLength) {
        controller.close();
        controller.byobRequest?.respond(0);
        return;
      }
      const request = controller.byobRequest;
      if (request?.view) {
        const view = new Uint8Array(
          request.view.buffer,
          request.view.byteOffset,
          request.view.byteLength,
        );
        const n = Math.min(piece, view.byteLength, source.byteLength - at);
        view.set(source.subarray(at, at + n));
        at += n;
        request.respond(n);
      } else {
        const n = Math.min(piece, source.byteLength - at);
        controller.enqueue(source.slice(at, at + n));
        at += n;
      }
    },
  });
}

/** A plain (default) stream of `source` in pieces. */
function chunkStream(source: Uint8Array, piece: number): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= source.byteLength) return controller.close();
      controller.enqueue(source.slice(at, at + piece));
      at += piece;
    },
  });
}

async function withFile(work: (file: Deno.FsFile, path: string) => Promise<void>) {
  const path = await Deno.makeTempFile({ prefix: "berth-batch-" });
  const file = await Deno.open(path, { write: true, read: true });
  try {
    await work(file, path);
  } finally {
    file.close();
    await Deno.remove(path);
  }
}

for (const [kind, make] of [["byte", byteStream], ["plain", chunkStream]] as const) {
  Deno.test(`batch writer: a ${kind} stream is written and observed whole, in order`, async () => {
    const source = bytesOf(2 * WRITE_BATCH + 12345);
    await withFile(async (file, path) => {
      const hash = createHash("sha256");
      let seen = 0;
      const written = await writeBatched(make(source, 100_000), file, {
        observe: (bytes) => {
          hash.update(bytes);
          seen += bytes.byteLength;
        },
        expectedLength: source.byteLength,
      });
      assert.equal(written, source.byteLength);
      assert.equal(seen, source.byteLength);
      assert.equal(hash.digest("hex"), createHash("sha256").update(source).digest("hex"));
      assert.deepEqual(await Deno.readFile(path), source);
    });
  });

  Deno.test(`batch writer: a ${kind} stream longer than expected fails with SizeMismatch`, async () => {
    await withFile(async (file, path) => {
      await assert.rejects(
        writeBatched(make(bytesOf(5000), 1000), file, { expectedLength: 4999 }),
        SizeMismatch,
      );
      assert.equal((await Deno.stat(path)).size, 0, "nothing past the limit is written");
    });
  });
}

for (const [kind, make] of [["byte", byteStream], ["plain", chunkStream]] as const) {
  Deno.test(`batch writer: a ${kind} stream's batch buffers are freed (detached) when it returns, also on failure`, async () => {
    for (const expectedLength of [undefined, 4999]) {
      const seen = new Set<ArrayBuffer>();
      const sink = {
        write(bytes: Uint8Array): Promise<number> {
          seen.add(bytes.buffer as ArrayBuffer);
          return Promise.resolve(bytes.byteLength);
        },
      };
      const body = make(bytesOf(2 * WRITE_BATCH + 5000), 100_000);
      const options = expectedLength === undefined ? {} : { expectedLength };
      await writeBatched(body, sink, options).catch((error) => {
        if (!(error instanceof SizeMismatch)) throw error;
      });
      if (expectedLength === undefined) assert.ok(seen.size > 0, "batches were written");
      for (const buffer of seen) assert.equal(buffer.detached, true);
    }
  });
}

Deno.test("batch writer: with kept buffers, bodies in a row are read into the same two, a failed one's are freed", async () => {
  const buffers = new BufferPool(WRITE_BATCH, 2);
  /** Write a body of `size` bytes; returns the buffers its batches were in. */
  const write = async (size: number, expectedLength?: number) => {
    const seen = new Set<ArrayBuffer>();
    const sink = {
      write(bytes: Uint8Array): Promise<number> {
        seen.add(bytes.buffer as ArrayBuffer);
        return Promise.resolve(bytes.byteLength);
      },
    };
    const options = expectedLength === undefined ? {} : { expectedLength };
    const failure = await writeBatched(chunkStream(bytesOf(size), 100_000), sink, options, buffers)
      .then(() => undefined, (error) => error);
    return { seen, failure };
  };
  const first = await write(2 * WRITE_BATCH + 5000);
  assert.equal(first.failure, undefined);
  assert.equal(first.seen.size, 2);
  for (const buffer of first.seen) assert.equal(buffer.detached, false, "kept, not freed");
  const second = await write(3 * WRITE_BATCH);
  assert.deepEqual(second.seen, first.seen, "the kept buffers again");

  // A body too long for its length fails: its buffers are freed, not kept.
  const failed = await write(2 * WRITE_BATCH + 5000, 2 * WRITE_BATCH + 4999);
  assert.ok(failed.failure instanceof SizeMismatch);
  assert.deepEqual(failed.seen, first.seen);
  for (const buffer of failed.seen) assert.equal(buffer.detached, true);
  const next = await write(WRITE_BATCH + 1);
  for (const buffer of next.seen) assert.equal(first.seen.has(buffer), false, "fresh buffers");

  // A small body of known length has buffers of its own size: freed, and the kept ones untouched.
  const small = await write(1000, 1000);
  assert.equal(small.failure, undefined);
  assert.equal(small.seen.size, 1);
  for (const buffer of small.seen) assert.equal(buffer.detached, true);
  assert.deepEqual((await write(WRITE_BATCH + 1)).seen, next.seen);
});
