/**
 * Blob uploads: sessions, chunks, monolithic pushes, cross-repository mounts, and the commit that
 * verifies a digest before the blob becomes visible.
 *
 * @module
 */
import { RegistryError } from "../errors.ts";
import { type Digest, Digester } from "../oci/digest.ts";
import { isUploadId, SizeMismatch, type Store, WriterBusy } from "../storage/store.ts";
import type { BlobGuard } from "./blob_guard.ts";
import { KeyedLock } from "./keyed_lock.ts";

/** A chunk of an upload as the HTTP layer hands it over. */
export interface Chunk {
  /**
   * The bytes (absent for an empty body), as the HTTP layer guards them: a read that fails throws
   * the `RegistryError` to answer with (src/http/limits.ts), which the append passes on.
   */
  body: ReadableStream<Uint8Array> | null;
  /** The declared `Content-Length`, when any. */
  length?: number;
  /** The declared `Content-Range` start, when any: it must be the session's current size. */
  start?: number;
}

/** Uploads of one registry: hash state is kept per session between chunks. */
export class UploadService {
  readonly #store: Store;
  readonly #lock = new KeyedLock();
  /** Hash state per session, always equal to the bytes on disk when present. */
  readonly #hashes = new Map<string, Digester>();
  readonly #guard: BlobGuard | undefined;
  /** Set when the shutdown deadline passed: a chunk of declared length cut then keeps its prefix. */
  #stopping = false;

  /** Uploads over `store`; commits and mounts count as uses for garbage collection (`guard`). */
  constructor(store: Store, guard?: BlobGuard) {
    this.#store = store;
    this.#guard = guard;
  }

  /**
   * The shutdown deadline passed: chunks of declared length cut from now on keep the prefix that
   * reached storage (the client resumes from the session's `Range`); chunked ones are still cut
   * back to where they began.
   */
  stopWrites(): void {
    this.#stopping = true;
  }

  /** Open a session; returns its id. */
  async start(name: string): Promise<string> {
    const id = crypto.randomUUID();
    await this.#store.createUpload(name, id, new Date());
    this.#hashes.set(key(name, id), new Digester());
    return id;
  }

  /** Bytes received so far, or `BLOB_UPLOAD_UNKNOWN`. */
  async status(name: string, id: string): Promise<number> {
    return (await this.#info(name, id)).size;
  }

  /** Append a chunk; returns the new size. */
  append(name: string, id: string, chunk: Chunk): Promise<number> {
    return this.#lock.run(key(name, id), () => this.#append(name, id, chunk));
  }

  /**
   * Append an optional last chunk, verify `digest`, make the blob visible. `verified` is called
   * once the digest matched, before the (slower) durable commit.
   */
  complete(
    name: string,
    id: string,
    digest: Digest,
    chunk?: Chunk,
    verified?: () => void,
  ): Promise<void> {
    return this.#lock.run(key(name, id), async () => {
      if (chunk?.body) await this.#append(name, id, chunk);
      else await this.#info(name, id);
      try {
        const actual = await this.#digestOf(name, id, digest);
        if (actual.value !== digest.value) {
          await this.#drop(name, id);
          throw new RegistryError("DIGEST_INVALID", {
            expected: digest.value,
            actual: actual.value,
          });
        }
        verified?.();
        await this.#guard?.use([digest]);
        await this.#store.commitUpload(name, id, digest);
      } catch (error) {
        if (error instanceof WriterBusy) throw busy();
        throw error;
      }
      this.#hashes.delete(key(name, id));
    });
  }

  /** Push a whole blob in one request. */
  async monolithic(name: string, digest: Digest, chunk: Chunk): Promise<void> {
    const id = await this.start(name);
    try {
      await this.complete(name, id, digest, chunk);
    } catch (error) {
      await this.#drop(name, id);
      throw error;
    }
  }

  /** Cancel a session. */
  async cancel(name: string, id: string): Promise<void> {
    await this.#lock.run(key(name, id), async () => {
      checkId(id);
      try {
        if (!(await this.#drop(name, id))) throw unknownUpload(id);
      } catch (error) {
        // Another replica's request kept writing to it: the client may try again.
        if (error instanceof WriterBusy) throw busy();
        throw error;
      }
    });
  }

  /**
   * Mount a blob into `name`: from repository `from` when given, else from the global store.
   * Returns `false` when the blob is not available (the caller opens a session instead).
   */
  async mount(name: string, digest: Digest, from?: string): Promise<boolean> {
    await this.#guard?.use([digest]);
    const available = from === undefined
      ? (await this.#store.statBlob(digest)) !== undefined
      : await this.#store.hasLink(from, "layer", digest) &&
        (await this.#store.statBlob(digest)) !== undefined;
    if (!available) return false;
    await this.#store.putLink(name, "layer", digest);
    return true;
  }

  /** Remove sessions older than `maxAgeMs`; returns their ids. */
  async purge(name: string, maxAgeMs: number, now = Date.now()): Promise<string[]> {
    const removed: string[] = [];
    for (const { id, startedAt } of await this.#store.listUploads(name)) {
      if (now - startedAt.getTime() < maxAgeMs) continue;
      // A session still being written (by another replica) is left for the next purge.
      const dropped = await this.#lock.run(key(name, id), () => this.#drop(name, id))
        .then(() => true, (error) => {
          if (error instanceof WriterBusy) return false;
          throw error;
        });
      if (dropped) removed.push(id);
    }
    return removed;
  }

  async #append(name: string, id: string, chunk: Chunk): Promise<number> {
    const { size } = await this.#info(name, id);
    if (chunk.start !== undefined && chunk.start !== size) {
      await chunk.body?.cancel().catch(() => {});
      throw new RegistryError("UPLOAD_RANGE_INVALID", { expected: size, received: chunk.start }, {
        message: `chunk out of order: it must start at ${size}`,
      });
    }
    if (!chunk.body) {
      if (chunk.length) throw sizeInvalid(chunk.length, 0);
      return size;
    }
    const k = key(name, id);
    const hash = this.#hashes.get(k);
    this.#hashes.delete(k);
    const usable = hash && hash.size === size ? hash : undefined;
    try {
      const options = {
        ...(usable && { observe: (bytes: Uint8Array) => usable.update(bytes) }),
        ...(chunk.length !== undefined && {
          expectedLength: chunk.length,
          keepPartial: (error: unknown) => this.#stopping && !(error instanceof SizeMismatch),
        }),
      };
      const next = await this.#store.appendUpload(name, id, size, chunk.body, options);
      if (usable) this.#hashes.set(k, usable);
      return next;
    } catch (error) {
      if (error instanceof SizeMismatch) throw sizeInvalid(error.expected, error.received);
      if (error instanceof WriterBusy) throw busy(size);
      throw error;
    }
  }

  async #digestOf(name: string, id: string, expected: Digest): Promise<Digest> {
    const hash = this.#hashes.get(key(name, id));
    const { size } = await this.#info(name, id);
    if (hash && hash.algorithm === expected.algorithm && hash.size === size) return hash.peek();
    const stream = await this.#store.readUpload(name, id);
    if (!stream) throw unknownUpload(id);
    const fresh = new Digester(expected.algorithm);
    for await (const bytes of stream) fresh.update(bytes);
    return fresh.peek();
  }

  async #info(name: string, id: string) {
    checkId(id);
    const info = await this.#store.statUpload(name, id);
    if (!info) throw unknownUpload(id);
    return info;
  }

  async #drop(name: string, id: string): Promise<boolean> {
    this.#hashes.delete(key(name, id));
    return await this.#store.deleteUpload(name, id);
  }
}

function key(name: string, id: string): string {
  return `${name}\0${id}`;
}

function checkId(id: string): void {
  if (!isUploadId(id)) throw unknownUpload(id);
}

function unknownUpload(id: string): RegistryError {
  return new RegistryError("BLOB_UPLOAD_UNKNOWN", { id: id.slice(0, 100) });
}

/** Another request (on any replica) is writing the session, or wrote to it since `size`. */
function busy(size?: number): RegistryError {
  return new RegistryError("UPLOAD_RANGE_INVALID", size === undefined ? null : { expected: size }, {
    message: "chunk out of order: another request is writing to this upload; ask its offset again",
  });
}

function sizeInvalid(expected: number, received: number): RegistryError {
  return new RegistryError("SIZE_INVALID", { expected, received });
}
