import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { DigestThread } from "../../src/oci/digest_thread.ts";
import { writeBatched } from "../../src/storage/drivers/batch_writer.ts";
import { failingDigestSource } from "../helpers/failing_digests.ts";

/** Random bytes (crypto.getRandomValues fills at most 64 KiB per call). */
function randomBytes(size: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  for (let at = 0; at < size; at += 65536) {
    crypto.getRandomValues(bytes.subarray(at, Math.min(size, at + 65536)));
  }
  return bytes;
}

/** A random integer in [0, max). */
function below(max: number): number {
  return Math.floor(Math.random() * max);
}

/** Hand `bytes` to a thread digest in random pieces, each copied into a buffer of its own. */
async function feed(
  digest: { hash(batch: Uint8Array<ArrayBuffer>): Promise<ArrayBuffer> },
  bytes: Uint8Array,
  maxPiece: number,
): Promise<void> {
  for (let at = 0; at < bytes.byteLength;) {
    const n = Math.min(bytes.byteLength - at, 1 + below(maxPiece));
    // A piece at a random offset inside a bigger buffer: offsets must be honoured.
    const offset = below(64);
    const buffer = new Uint8Array(offset + n + below(64));
    buffer.set(bytes.subarray(at, at + n), offset);
    const whole = buffer.byteLength;
    const back = await digest.hash(buffer.subarray(offset, offset + n));
    assert.equal(buffer.byteLength, 0, "the buffer was lent (transferred) to the worker");
    assert.equal(back.byteLength, whole, "and comes back whole");
    at += n;
  }
}

Deno.test("digest thread: digests equal node:crypto's for random sizes and batch boundaries", async () => {
  const thread = new DigestThread();
  try {
    for (const algorithm of ["sha256", "sha512"] as const) {
      for (const size of [0, 1, 63, 64, 65, 1000, 65536, 1 << 20, 3 * (1 << 20) + below(9999)]) {
        const bytes = randomBytes(size);
        const digest = thread.start(algorithm);
        await feed(digest, bytes, 1 + below(256 * 1024));
        const expected = createHash(algorithm).update(bytes).digest("hex");
        assert.equal((await digest.peek()).value, `${algorithm}:${expected}`, `${size} bytes`);
        assert.equal(digest.size, size);
        assert.ok(digest.live);
        digest.drop();
        assert.ok(!digest.live);
      }
    }
  } finally {
    thread.close();
  }
});

Deno.test("digest thread: interleaved digests stay apart, and a peek leaves a digest usable", async () => {
  const thread = new DigestThread();
  try {
    const a = randomBytes(2 << 20);
    const b = randomBytes(1 << 20);
    const da = thread.start();
    const db = thread.start();
    // Both fed at once, without waiting for each other.
    await Promise.all([feed(da, a.subarray(0, 1 << 20), 100_000), feed(db, b, 70_000)]);
    const half = createHash("sha256").update(a.subarray(0, 1 << 20)).digest("hex");
    assert.equal((await da.peek()).hex, half);
    await feed(da, a.subarray(1 << 20), 300_000);
    assert.equal((await da.peek()).hex, createHash("sha256").update(a).digest("hex"));
    assert.equal((await db.peek()).hex, createHash("sha256").update(b).digest("hex"));
  } finally {
    thread.close();
  }
});

Deno.test("digest thread: writeBatched with a thread digest stores and hashes every byte in order", async () => {
  const thread = new DigestThread();
  const path = await Deno.makeTempFile({ prefix: "berth-digest-thread-" });
  try {
    for (const size of [1, (1 << 20) - 1, 1 << 20, (5 << 20) + below(1 << 20)]) {
      const bytes = randomBytes(size);
      let at = 0;
      // Random piece sizes, so batch boundaries fall anywhere in the pieces.
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (at >= size) return controller.close();
          const n = Math.min(size - at, 1 + below(200_000));
          controller.enqueue(bytes.slice(at, at + n));
          at += n;
        },
      });
      const file = await Deno.open(path, { write: true, truncate: true });
      const digest = thread.start();
      try {
        assert.equal(await writeBatched(body, file, { hasher: digest }), size);
      } finally {
        file.close();
      }
      assert.deepEqual(await Deno.readFile(path), bytes);
      assert.equal((await digest.peek()).hex, createHash("sha256").update(bytes).digest("hex"));
      digest.drop();
    }
  } finally {
    thread.close();
    await Deno.remove(path);
  }
});

Deno.test("digest thread: a worker that dies fails what is pending, and the next digest gets a new one", async () => {
  const thread = new DigestThread(failingDigestSource(3));
  try {
    const digest = thread.start();
    const pieces = Array.from({ length: 6 }, () => randomBytes(1000));
    const results = await Promise.allSettled(pieces.map((piece) => digest.hash(piece)));
    assert.ok(results.some((result) => result.status === "rejected"), "some batch fails");
    assert.ok(!digest.live, "the digest is lost");
    await assert.rejects(digest.peek());

    const again = thread.start();
    const bytes = randomBytes(1500);
    await again.hash(bytes.slice(0, 700));
    await again.hash(bytes.slice(700));
    assert.equal((await again.peek()).hex, createHash("sha256").update(bytes).digest("hex"));
    assert.ok(again.live);
  } finally {
    thread.close();
  }
});
