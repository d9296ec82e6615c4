/**
 * An in-memory {@link Store}: everything lives in `Map`s and is gone with the process. It keeps
 * the storage interface honest (it runs the same conformance suite as the filesystem store) and
 * makes tests fast.
 *
 * @module
 */
import type { Digest } from "../../oci/digest.ts";
import {
  type AppendOptions,
  type BlobContent,
  type BlobInfo,
  type ByteRange,
  type LinkKind,
  SizeMismatch,
  type Store,
  type UploadInfo,
} from "../store.ts";
import { upperBound } from "../sorted_names.ts";
import { concatBytes } from "../../bytes.ts";

/** Largest chunk a blob or upload stream hands out at once. */
const READ_CHUNK = 64 * 1024;

/** A stored blob: its digest and its bytes. */
interface BlobEntry {
  digest: Digest;
  modifiedAt: Date;
  bytes: Uint8Array<ArrayBuffer>;
}

/** An upload session: received bytes kept as a list of chunks, never one growing array. */
interface UploadEntry {
  startedAt: Date;
  chunks: Uint8Array[];
  size: number;
  /** Whether an append is running (appends to one session never overlap). */
  writing: boolean;
}

/** Everything stored under one repository name. */
interface RepositoryEntry {
  links: Record<LinkKind, Map<string, Digest>>;
  tags: Map<string, Digest>;
  /** When each tag was last put. */
  tagTimes: Map<string, Date>;
  uploads: Map<string, UploadEntry>;
  /** Subject digest → referrer digest → referrer. */
  referrers: Map<string, Map<string, Digest>>;
}

/** A {@link Store} kept in memory. */
export class MemoryStore implements Store {
  #blobs = new Map<string, BlobEntry>();
  #repositories = new Map<string, RepositoryEntry>();
  /** Repository names, kept sorted as repositories are created. */
  #names: string[] = [];

  /** Nothing is held open. */
  close(): void {}

  /** Size of a blob, or `undefined`. */
  statBlob(digest: Digest): Promise<number | undefined> {
    return Promise.resolve(this.#blobs.get(digest.value)?.bytes.byteLength);
  }

  /** Open a blob whole or one inclusive range (checked by the caller against its size). */
  openBlob(digest: Digest, range?: ByteRange): Promise<BlobContent | undefined> {
    const entry = this.#blobs.get(digest.value);
    if (!entry) return Promise.resolve(undefined);
    const bytes = range ? entry.bytes.subarray(range.start, range.end + 1) : entry.bytes;
    return Promise.resolve({ size: entry.bytes.byteLength, body: streamChunks([bytes]) });
  }

  /** A copy of a blob's bytes, or `undefined`. */
  readBlob(digest: Digest): Promise<Uint8Array<ArrayBuffer> | undefined> {
    return Promise.resolve(this.#blobs.get(digest.value)?.bytes.slice());
  }

  /** Store a copy of `bytes` under `digest`; an existing blob is kept as it is. */
  putBlob(digest: Digest, bytes: Uint8Array): Promise<void> {
    if (!this.#blobs.has(digest.value)) {
      this.#blobs.set(digest.value, { digest, modifiedAt: new Date(), bytes: bytes.slice() });
    }
    return Promise.resolve();
  }

  /** Remove a blob; removing an absent blob does nothing. */
  deleteBlob(digest: Digest): Promise<void> {
    this.#blobs.delete(digest.value);
    return Promise.resolve();
  }

  /** Every blob's digest (a snapshot taken when iteration starts). */
  async *listBlobs(): AsyncIterable<Digest> {
    yield* [...this.#blobs.values()].map((entry) => entry.digest);
  }

  /** Size and creation time of a blob, or `undefined`. */
  blobInfo(digest: Digest): Promise<BlobInfo | undefined> {
    const entry = this.#blobs.get(digest.value);
    return Promise.resolve(
      entry && { size: entry.bytes.byteLength, modifiedAt: new Date(entry.modifiedAt.getTime()) },
    );
  }

  /** Whether the repository links `digest` in the set `kind`. */
  hasLink(name: string, kind: LinkKind, digest: Digest): Promise<boolean> {
    const linked = this.#repositories.get(name)?.links[kind].has(digest.value) ?? false;
    return Promise.resolve(linked);
  }

  /** Link `digest` into the repository, creating the repository (idempotent). */
  putLink(name: string, kind: LinkKind, digest: Digest): Promise<void> {
    this.#repository(name).links[kind].set(digest.value, digest);
    return Promise.resolve();
  }

  /** Unlink `digest`; `false` when it was not linked. */
  deleteLink(name: string, kind: LinkKind, digest: Digest): Promise<boolean> {
    const deleted = this.#repositories.get(name)?.links[kind].delete(digest.value) ?? false;
    return Promise.resolve(deleted);
  }

  /** Every digest linked in the set `kind` (a snapshot taken when iteration starts). */
  async *listLinks(name: string, kind: LinkKind): AsyncIterable<Digest> {
    yield* [...(this.#repositories.get(name)?.links[kind].values() ?? [])];
  }

  /** The digest `tag` points at, or `undefined`. */
  getTag(name: string, tag: string): Promise<Digest | undefined> {
    return Promise.resolve(this.#repositories.get(name)?.tags.get(tag));
  }

  /** Point `tag` at `digest`, creating the repository. */
  putTag(name: string, tag: string, digest: Digest): Promise<void> {
    this.#repository(name).tags.set(tag, digest);
    this.#repository(name).tagTimes.set(tag, new Date());
    return Promise.resolve();
  }

  /** When `tag` was last put, or `undefined`. */
  tagModifiedAt(name: string, tag: string): Promise<Date | undefined> {
    const repository = this.#repositories.get(name);
    const at = repository?.tags.has(tag) ? repository.tagTimes.get(tag) : undefined;
    return Promise.resolve(at && new Date(at.getTime()));
  }

  /** Remove a tag; `false` when it did not exist. */
  deleteTag(name: string, tag: string): Promise<boolean> {
    return Promise.resolve(this.#repositories.get(name)?.tags.delete(tag) ?? false);
  }

  /** The repository's tags, or `undefined` when the repository is unknown. */
  listTags(name: string): Promise<string[] | undefined> {
    const repository = this.#repositories.get(name);
    return Promise.resolve(repository ? [...repository.tags.keys()] : undefined);
  }

  /** Whether anything (a link, a tag, an upload) was ever stored under `name`. */
  hasRepository(name: string): Promise<boolean> {
    return Promise.resolve(this.#repositories.has(name));
  }

  /** Every repository name, sorted. */
  listRepositories(): Promise<string[]> {
    return Promise.resolve([...this.#repositories.keys()].sort());
  }

  /** Up to `limit` repository names sorted after `last`. */
  repositoryPage(last: string | undefined, limit: number): Promise<string[]> {
    const start = last === undefined ? 0 : upperBound(this.#names, last);
    return Promise.resolve(this.#names.slice(start, start + Math.max(0, limit)));
  }

  /** Record a referrer of `subject`, creating the repository. */
  putReferrer(name: string, subject: Digest, referrer: Digest): Promise<void> {
    const referrers = this.#repository(name).referrers;
    const set = referrers.get(subject.value) ?? new Map<string, Digest>();
    set.set(referrer.value, referrer);
    referrers.set(subject.value, set);
    return Promise.resolve();
  }

  /** Forget a referrer; `false` when it was not recorded. */
  deleteReferrer(name: string, subject: Digest, referrer: Digest): Promise<boolean> {
    const referrers = this.#repositories.get(name)?.referrers;
    const set = referrers?.get(subject.value);
    const deleted = set?.delete(referrer.value) ?? false;
    if (set?.size === 0) referrers?.delete(subject.value);
    return Promise.resolve(deleted);
  }

  /** Every referrer of `subject` (a snapshot taken when iteration starts). */
  async *listReferrers(name: string, subject: Digest): AsyncIterable<Digest> {
    yield* [...(this.#repositories.get(name)?.referrers.get(subject.value)?.values() ?? [])];
  }

  /** Open a new, empty upload session (replacing one with the same id). */
  createUpload(name: string, id: string, startedAt: Date): Promise<void> {
    this.#repository(name).uploads.set(id, {
      startedAt: new Date(startedAt.getTime()),
      chunks: [],
      size: 0,
      writing: false,
    });
    return Promise.resolve();
  }

  /** Size and start time of an upload session, or `undefined`. */
  statUpload(name: string, id: string): Promise<UploadInfo | undefined> {
    const upload = this.#repositories.get(name)?.uploads.get(id);
    if (!upload) return Promise.resolve(undefined);
    return Promise.resolve({ size: upload.size, startedAt: new Date(upload.startedAt.getTime()) });
  }

  /**
   * Append `body` at `offset`, which must be the session's current size; returns the new size.
   * On any failure (wrong offset, size mismatch, stream error, observer error, abort) the body is
   * cancelled and the session is cut back to `offset`.
   */
  async appendUpload(
    name: string,
    id: string,
    offset: number,
    body: ReadableStream<Uint8Array>,
    options: AppendOptions = {},
  ): Promise<number> {
    const upload = this.#repositories.get(name)?.uploads.get(id);
    const refusal = !upload
      ? `upload ${id} of ${name} does not exist`
      : upload.writing
      ? `upload ${id} of ${name} is already being written`
      : upload.size !== offset
      ? `upload ${id} of ${name} is at ${upload.size}, not at offset ${offset}`
      : undefined;
    if (!upload || refusal !== undefined) {
      await body.cancel().catch(() => {});
      throw new Error(refusal);
    }
    const { observe, expectedLength, signal } = options;
    const chunkCount = upload.chunks.length;
    const reader = body.getReader();
    const onAbort = () => void reader.cancel(signal?.reason).catch(() => {});
    upload.writing = true;
    signal?.addEventListener("abort", onAbort, { once: true });
    let received = 0;
    try {
      signal?.throwIfAborted();
      while (true) {
        const { done, value } = await reader.read();
        signal?.throwIfAborted();
        if (done) break;
        if (value.byteLength === 0) continue;
        received += value.byteLength;
        if (expectedLength !== undefined && received > expectedLength) {
          throw new SizeMismatch(expectedLength, received);
        }
        const chunk = value.slice();
        upload.chunks.push(chunk);
        upload.size += chunk.byteLength;
        observe?.(chunk);
      }
      if (expectedLength !== undefined && received !== expectedLength) {
        throw new SizeMismatch(expectedLength, received);
      }
      if (this.#repositories.get(name)?.uploads.get(id) !== upload) {
        throw new Error(`upload ${id} of ${name} was removed during the append`);
      }
      return upload.size;
    } catch (error) {
      upload.chunks.length = chunkCount;
      upload.size = offset;
      await reader.cancel(error).catch(() => {});
      throw error;
    } finally {
      upload.writing = false;
      signal?.removeEventListener("abort", onAbort);
      reader.releaseLock();
    }
  }

  /** Stream the bytes an upload has received so far, or `undefined`. */
  readUpload(name: string, id: string): Promise<ReadableStream<Uint8Array> | undefined> {
    const upload = this.#repositories.get(name)?.uploads.get(id);
    return Promise.resolve(upload ? streamChunks([...upload.chunks]) : undefined);
  }

  /** Make the upload's bytes the blob `digest`, link it as a layer, and remove the session. */
  commitUpload(name: string, id: string, digest: Digest): Promise<void> {
    const repository = this.#repositories.get(name);
    const upload = repository?.uploads.get(id);
    if (!repository || !upload) {
      return Promise.reject(new Error(`upload ${id} of ${name} does not exist`));
    }
    if (upload.writing) {
      return Promise.reject(new Error(`upload ${id} of ${name} is being written`));
    }
    if (!this.#blobs.has(digest.value)) {
      this.#blobs.set(digest.value, {
        digest,
        modifiedAt: new Date(),
        bytes: concatBytes(upload.chunks, upload.size),
      });
    }
    repository.links.layer.set(digest.value, digest);
    repository.uploads.delete(id);
    return Promise.resolve();
  }

  /** Remove an upload session; `false` when it did not exist. */
  deleteUpload(name: string, id: string): Promise<boolean> {
    return Promise.resolve(this.#repositories.get(name)?.uploads.delete(id) ?? false);
  }

  /** Every open upload session of the repository. */
  listUploads(name: string): Promise<{ id: string; startedAt: Date }[]> {
    const uploads = this.#repositories.get(name)?.uploads ?? new Map<string, UploadEntry>();
    return Promise.resolve(
      [...uploads].map(([id, upload]) => ({ id, startedAt: new Date(upload.startedAt.getTime()) })),
    );
  }

  /** The repository called `name`, created when absent. */
  #repository(name: string): RepositoryEntry {
    let repository = this.#repositories.get(name);
    if (!repository) {
      repository = {
        links: { layer: new Map(), manifest: new Map() },
        tags: new Map(),
        tagTimes: new Map(),
        uploads: new Map(),
        referrers: new Map(),
      };
      this.#repositories.set(name, repository);
      this.#names.splice(upperBound(this.#names, name), 0, name);
    }
    return repository;
  }
}

/** A stream of copies of `parts`, cut into pieces of at most {@link READ_CHUNK} bytes. */
function streamChunks(parts: readonly Uint8Array[]): ReadableStream<Uint8Array> {
  let index = 0;
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      while (index < parts.length) {
        const part = parts[index] as Uint8Array;
        if (at < part.byteLength) {
          controller.enqueue(part.slice(at, at + READ_CHUNK));
          at += READ_CHUNK;
          return;
        }
        index += 1;
        at = 0;
      }
      controller.close();
    },
  });
}
