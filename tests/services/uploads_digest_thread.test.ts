import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { RegistryError } from "../../src/errors.ts";
import { digestBytes } from "../../src/oci/digest.ts";
import { DigestThread } from "../../src/oci/digest_thread.ts";
import { THREAD_HASH_MIN, UploadService } from "../../src/services/uploads.ts";
import { fsStore } from "../../src/storage/open_store.ts";
import { failingDigestSource } from "../helpers/failing_digests.ts";
import { withTempDir } from "../helpers/temp.ts";

/** Random bytes (crypto.getRandomValues fills at most 64 KiB per call). */
function randomBytes(size: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  for (let at = 0; at < size; at += 65536) {
    crypto.getRandomValues(bytes.subarray(at, Math.min(size, at + 65536)));
  }
  return bytes;
}

/** `bytes` as a request body, in 64 KiB pieces. */
function bodyOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.byteLength) return controller.close();
      controller.enqueue(bytes.slice(at, at + 65536));
      at += 65536;
    },
  });
}

const SIZE = THREAD_HASH_MIN + (3 << 20) + 12345;

Deno.test("uploads: a big upload is hashed on the digest thread and committed under its digest", async () => {
  await withTempDir("berth-uploads-thread-", async (root) => {
    const store = fsStore(root);
    const uploads = new UploadService(store);
    try {
      const bytes = randomBytes(SIZE);
      const digest = digestBytes(bytes);
      const id = await uploads.start("a/b");
      // Two chunks: a chunked one (no length) starts the thread's digest, the next continues it.
      const half = SIZE >> 1;
      assert.equal(
        await uploads.append("a/b", id, { body: bodyOf(bytes.subarray(0, half)) }),
        half,
      );
      const rest = bytes.subarray(half);
      const second = { body: bodyOf(rest), length: rest.byteLength, start: half };
      assert.equal(await uploads.append("a/b", id, second), SIZE);
      await uploads.complete("a/b", id, digest);
      assert.equal(await store.statBlob(digest), SIZE);
      // A wrong digest is refused and nothing becomes visible.
      const other = randomBytes(SIZE);
      const wrong = digestBytes(randomBytes(10));
      await assert.rejects(
        uploads.monolithic("a/b", wrong, { body: bodyOf(other), length: other.byteLength }),
        (error: RegistryError) => error.kind === "DIGEST_INVALID",
      );
      assert.equal(await store.statBlob(digestBytes(other)), undefined);
    } finally {
      uploads.close();
      store.close();
    }
  });
});

Deno.test("uploads: an upload whose digest worker dies fails cleanly, leaves no blob, and can be sent again", async () => {
  await withTempDir("berth-uploads-thread-", async (root) => {
    const store = fsStore(root);
    // The worker dies on its 3rd batch: each upload below has more than 3.
    const uploads = new UploadService(store, undefined, new DigestThread(failingDigestSource(3)));
    try {
      const bytes = randomBytes(SIZE);
      const digest = digestBytes(bytes);
      assert.equal(digest.hex, createHash("sha256").update(bytes).digest("hex"));

      // Monolithic: fails, and neither the blob nor the session remains.
      await assert.rejects(
        uploads.monolithic("a/b", digest, { body: bodyOf(bytes), length: SIZE }),
        /digest thread/,
      );
      assert.equal(await store.statBlob(digest), undefined);
      assert.deepEqual(await store.listUploads("a/b"), []);

      // A session: the big chunk (hashed on a new worker, which dies too) fails and is cut back
      // to where it began; the session stays usable.
      const id = await uploads.start("a/b");
      await assert.rejects(uploads.append("a/b", id, { body: bodyOf(bytes), length: SIZE }));
      assert.equal(await uploads.status("a/b", id), 0);
      assert.equal(await store.statBlob(digest), undefined);
      // Small chunks are hashed on the main thread: the session completes with the right digest.
      const small = THREAD_HASH_MIN - 1;
      let size = 0;
      for (let at = 0; at < SIZE; at += small) {
        const piece = bytes.subarray(at, Math.min(SIZE, at + small));
        size = await uploads.append("a/b", id, {
          body: bodyOf(piece),
          length: piece.byteLength,
          start: at,
        });
      }
      assert.equal(size, SIZE);
      await uploads.complete("a/b", id, digest);
      assert.equal(await store.statBlob(digest), SIZE);
    } finally {
      uploads.close();
      store.close();
    }
  });
});
