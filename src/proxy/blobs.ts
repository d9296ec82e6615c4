/**
 * Blobs of mirrored repositories: a decorator over the blob service. A missing blob is fetched
 * once from the upstream (one fill per digest, however many clients ask) into an upload session,
 * so its digest is verified before it becomes visible. Every client follows the fill: it reads
 * the part already stored and waits for the rest as it is written (memory stays flat, a slow
 * client never holds the fill back); the last byte goes out only once the digest matched. A
 * client that goes away does not stop the fill.
 *
 * @module
 */
import { ClientError } from "../client/errors.ts";
import { RegistryError } from "../errors.ts";
import type { Digest } from "../oci/digest.ts";
import type { BlobGuard } from "../services/blob_guard.ts";
import { BlobService } from "../services/blobs.ts";
import type { MaintenanceLog } from "../services/maintenance.ts";
import { UploadService } from "../services/uploads.ts";
import { type ByteSource, FileStream } from "../storage/drivers/fs/file_stream.ts";
import type { BlobContent, ByteRange, Store } from "../storage/store.ts";
import { upstreamFailure } from "./manifests.ts";
import type { Mirrors, Route } from "./mirrors.ts";

/** Bytes appended to the upload session at a time: followers see the fill in steps of this. */
export const FILL_SEGMENT = 8 << 20;
/** Largest read from the upstream connection. */
const READ_BUFFER = 1 << 20;
/** Times a broken upstream download is resumed (`Range`) before the fill fails. */
const RESUMES = 3;

/** Blobs with mirrored repositories read through from their upstream. */
export class MirroredBlobs extends BlobService {
  readonly #store: Store;
  readonly #mirrors: Mirrors;
  readonly #uploads: UploadService;
  readonly #log: MaintenanceLog;
  /** Fills in flight, by digest. */
  readonly #fills = new Map<string, Fill>();

  /** Blobs over `store`, mirroring through `mirrors`. */
  constructor(store: Store, guard: BlobGuard | undefined, mirrors: Mirrors, log: MaintenanceLog) {
    super(store, guard);
    this.#store = store;
    this.#mirrors = mirrors;
    this.#uploads = new UploadService(store, guard);
    this.#log = log;
  }

  override async stat(name: string, digest: Digest): Promise<number> {
    const route = this.#mirrors.route(name);
    if (!route) return await super.stat(name, digest);
    const counters = route.mirror.counters;
    try {
      const size = await super.stat(name, digest);
      counters.hits++;
      return size;
    } catch (error) {
      if (!(error instanceof RegistryError) || error.kind !== "BLOB_UNKNOWN") throw error;
    }
    const running = this.#fills.get(digest.value);
    if (running) return running.size;
    // Cached already (another repository or mirror): link it here.
    if (await this.#uploads.mount(name, digest)) {
      counters.hits++;
      return await super.stat(name, digest);
    }
    counters.misses++;
    let found: { size: number } | undefined;
    try {
      found = await route.mirror.client.statBlob(route.upstream, digest.value);
    } catch (error) {
      counters.upstreamErrors++;
      throw upstreamFailure(route, error);
    }
    if (!found || found.size < 0) {
      throw new RegistryError("BLOB_UNKNOWN", { digest: digest.value });
    }
    const again = this.#fills.get(digest.value);
    if (again) return again.size;
    const fill = new Fill(this.#store, this.#uploads, {
      name,
      route,
      digest,
      size: found.size,
      log: this.#log,
    });
    this.#fills.set(digest.value, fill);
    fill.done.catch(() => {}).finally(() => this.#fills.delete(digest.value));
    return fill.size;
  }

  override async open(digest: Digest, range?: ByteRange): Promise<BlobContent> {
    const fill = this.#fills.get(digest.value);
    if (fill) return { body: fill.follow(range), size: fill.size };
    return await super.open(digest, range);
  }

  /** Wait for the fills in flight (shutdown and tests). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.#fills.values()].map((fill) => fill.done));
  }

  /** Whether a digest is being fetched now. */
  filling(digest: string): boolean {
    return this.#fills.has(digest);
  }
}

/** What one fill fetches, and for whom. */
interface FillTarget {
  /** The repository that asked first (the session lives there; the commit links it). */
  name: string;
  route: Route;
  digest: Digest;
  size: number;
  log: MaintenanceLog;
}

/** One upstream fetch of a blob into the store, followed by any number of readers. */
class Fill {
  readonly size: number;
  /** Settles when the blob is committed (visible), or the fill failed. */
  readonly done: Promise<void>;
  readonly #store: Store;
  readonly #target: FillTarget;
  #id: string | undefined;
  /** Bytes appended to the session (readable by followers). */
  #stored = 0;
  /** The digest matched: the last byte may go out. */
  #verified = false;
  #committed = false;
  #failed = false;
  #error: unknown;
  #waiters: (() => void)[] = [];

  constructor(store: Store, uploads: UploadService, target: FillTarget) {
    this.size = target.size;
    this.#store = store;
    this.#target = target;
    this.done = this.#run(uploads).then(
      () => {
        this.#committed = true;
        this.#wake();
      },
      (error) => {
        this.#failed = true;
        this.#error = error;
        this.#wake();
        target.route.mirror.counters.upstreamErrors++;
        target.log("error", "mirror: blob fill failed", {
          mirror: target.route.mirror.label,
          repository: target.name,
          digest: target.digest.value,
          error: error instanceof Error ? error.message : String(error),
        });
        throw error;
      },
    );
  }

  /**
   * The blob (or `range` of it) as the fill stores it: bytes already stored are read from the
   * session's file, later ones as they are appended; reads fail when the fill fails. The stream
   * is a {@link FileStream} over a {@link Follower}, which the HTTP server sends the way it sends
   * a stored blob (large reads into one reused buffer, no stream machinery per chunk).
   */
  follow(range?: ByteRange): ReadableStream<Uint8Array> {
    const start = range?.start ?? 0;
    const end = range ? range.end + 1 : this.size;
    return new FileStream(new Follower(this, start, end), end - start);
  }

  /** Bytes a follower may read now: all once verified, else all stored but the last byte. */
  readable(): number {
    if (this.#failed) throw this.failure(this.#error);
    return this.#verified ? this.size : Math.min(this.#stored, this.size - 1);
  }

  /** Resolves at the fill's next step (more bytes stored, verified, committed or failed). */
  changed(): Promise<void> {
    return new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  /** The error a reader answers with when the fill failed. */
  failure(error: unknown): RegistryError {
    const route = this.#target.route;
    if (error instanceof RegistryError && error.kind === "DIGEST_INVALID") {
      return upstreamFailure(route, new Error(`wrong bytes for ${this.#target.digest.value}`));
    }
    return upstreamFailure(route, error);
  }

  /** A stream of the blob from `position`: the session while it exists, else the stored blob. */
  async openAt(position: number): Promise<ReadableStream<Uint8Array>> {
    const { name, digest } = this.#target;
    if (!this.#committed && this.#id !== undefined && this.#store.followUpload) {
      const live = await this.#store.followUpload(name, this.#id, position).catch(() => undefined);
      if (live) return live;
    }
    // The storage cannot show the session (S3), or it was just committed: the blob itself.
    while (!this.#committed) {
      if (this.#failed) throw this.failure(this.#error);
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
    const content = await this.#store.openBlob(digest, { start: position, end: this.size - 1 });
    if (!content) throw this.failure(new Error(`${digest.value} vanished after its fill`));
    return content.body;
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  async #run(uploads: UploadService): Promise<void> {
    const { name, route, digest, size } = this.#target;
    const counters = route.mirror.counters;
    const upstream = new UpstreamBody(
      (offset) => route.mirror.client.openBlob(route.upstream, digest.value, offset),
      (n) => counters.bytesFetched += n,
    );
    const id = await uploads.start(name);
    this.#id = id;
    try {
      await upstream.start();
      while (this.#stored < size) {
        const length = Math.min(FILL_SEGMENT, size - this.#stored);
        // The session hashes what it stores, once; the commit refuses a wrong digest. A failed
        // append keeps nothing of the segment (its hash state is dropped: the commit re-hashes).
        try {
          await uploads.append(name, id, {
            body: upstream.segment(length),
            length,
            start: this.#stored,
          });
        } catch (error) {
          if (!upstream.resumable(error)) throw error;
          await upstream.resume(this.#stored);
          continue;
        }
        this.#stored += length;
        this.#wake();
      }
      await upstream.close();
      await uploads.complete(name, id, digest, undefined, () => {
        this.#verified = true;
        this.#wake();
      });
    } catch (error) {
      await upstream.close();
      await uploads.cancel(name, id).catch(() => {});
      if (error instanceof ClientError && error.kind === "not-found") {
        throw new RegistryError("BLOB_UNKNOWN", { digest: digest.value });
      }
      throw error;
    }
  }
}

/**
 * One client's read of a fill, from `position` to `end`, as a file-like source: each read waits
 * until the fill has stored (and, for the last byte, verified) bytes past the position, then reads
 * them from the session's file, kept open across the commit (the rename leaves it readable). A
 * storage that cannot show the session (S3) is read through streams instead.
 */
class Follower implements ByteSource {
  readonly #fill: Fill;
  readonly #end: number;
  #position: number;
  /** The session's (or blob's) file, positioned at `#position`. */
  #file: ByteSource | undefined;
  /** Otherwise a stream of it, readable up to `#limit`, and the rest of its last chunk. */
  #reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  #limit = 0;
  #rest: Uint8Array | undefined;
  #closed = false;

  constructor(fill: Fill, start: number, end: number) {
    this.#fill = fill;
    this.#position = start;
    this.#end = end;
  }

  async read(p: Uint8Array): Promise<number | null> {
    while (true) {
      if (this.#closed) throw new Error("the follower is closed");
      if (this.#position >= this.#end) return null;
      const ready = Math.min(this.#end, this.#fill.readable());
      if (this.#position >= ready) {
        await this.#fill.changed();
        continue;
      }
      const want = Math.min(p.byteLength, ready - this.#position);
      if (!this.#file && !this.#reader) await this.#open(ready);
      const n = this.#file
        ? await this.#file.read(p.subarray(0, want))
        : await this.#fromStream(p.subarray(0, want));
      if (n === null || n === 0) {
        if (this.#file) throw new Error("the fill's file ended before its stored size");
        continue;
      }
      this.#position += n;
      return n;
    }
  }

  close(): void {
    this.#closed = true;
    this.#drop();
  }

  async #open(ready: number): Promise<void> {
    const stream = await this.#fill.openAt(this.#position);
    if (this.#closed) {
      await stream.cancel().catch(() => {});
      throw new Error("the follower is closed");
    }
    const taken = stream instanceof FileStream ? stream.takeFile() : undefined;
    if (taken) this.#file = taken.file;
    else {
      this.#reader = stream.getReader();
      this.#limit = ready;
    }
  }

  /** Copy from the open stream into `p`; 0 when it ended (it is dropped, the next read reopens). */
  async #fromStream(p: Uint8Array): Promise<number> {
    if (!this.#rest || this.#rest.byteLength === 0) {
      const { done, value } = await this.#reader!.read();
      if (done) {
        this.#drop();
        return 0;
      }
      this.#rest = value;
    }
    const n = Math.min(p.byteLength, this.#rest.byteLength, this.#limit - this.#position);
    p.set(this.#rest.subarray(0, n));
    this.#rest = this.#rest.subarray(n);
    if (this.#position + n >= this.#limit) this.#drop();
    return n;
  }

  #drop(): void {
    const file = this.#file;
    const reader = this.#reader;
    this.#file = undefined;
    this.#reader = undefined;
    this.#rest = undefined;
    try {
      file?.close();
    } catch {
      // Already closed.
    }
    reader?.cancel().catch(() => {});
  }
}

/**
 * The upstream's response body, cut into segments. A segment is a byte stream: the session's
 * writer reads it with BYOB reads into its own batch buffer, and each is passed on to a BYOB read
 * of the upstream body, so the bytes land where they are hashed and written from without a copy
 * (a runtime whose `fetch` body is not a byte stream gets its chunks copied). A broken download
 * fails the segment; the fill then resumes it from the segment's start with a `Range` request.
 */
class UpstreamBody {
  readonly #open: (offset: number) => Promise<ReadableStream<Uint8Array>>;
  readonly #counted: (n: number) => void;
  #reader: ReadableStreamBYOBReader | ReadableStreamDefaultReader<Uint8Array> | undefined;
  /** The last read failure of the upstream body (what {@link resumable} recognises). */
  #broken: unknown;
  #resumes = 0;
  /** What is left of the last chunk of a body that is not a byte stream. */
  #rest: Uint8Array | undefined;

  constructor(
    open: (offset: number) => Promise<ReadableStream<Uint8Array>>,
    counted: (n: number) => void,
  ) {
    this.#open = open;
    this.#counted = counted;
  }

  /** Open the download at `offset`. */
  async start(offset = 0): Promise<void> {
    this.#reader = readerOf(await this.#open(offset));
  }

  /** Whether a segment failed with `error` because the download broke, and may be resumed. */
  resumable(error: unknown): boolean {
    return error === this.#broken && !(error instanceof ClientError) &&
      this.#resumes < RESUMES;
  }

  /** Reopen the download at `offset` (after a {@link resumable} failure). */
  async resume(offset: number): Promise<void> {
    this.#resumes++;
    await this.close();
    await this.start(offset);
  }

  /** The next `length` bytes as a byte stream (read it with a BYOB reader to avoid copies). */
  segment(length: number): ReadableStream<Uint8Array> {
    let left = length;
    return new ReadableStream({
      type: "bytes",
      pull: async (controller) => {
        const request = controller.byobRequest;
        const view = request?.view;
        const max = Math.min(left, view?.byteLength ?? READ_BUFFER);
        const into = view ? new Uint8Array(view.buffer, view.byteOffset, max) : new Uint8Array(max);
        const bytes = await this.#read(into);
        if (!bytes) throw new Error(`the upstream ended ${left} bytes before the blob's size`);
        left -= bytes.byteLength;
        this.#counted(bytes.byteLength);
        if (request) request.respondWithNewView(bytes);
        else controller.enqueue(bytes);
        if (left === 0) controller.close();
      },
    });
  }

  /** Stop reading (the rest of the body is not needed). */
  async close(): Promise<void> {
    const reader = this.#reader;
    this.#reader = undefined;
    this.#rest = undefined;
    await reader?.cancel().catch(() => {});
  }

  /** Read into `into`; the bytes read (a view of `into`'s memory), `undefined` at the end. */
  async #read(into: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer> | undefined> {
    const reader = this.#reader;
    if (!reader) throw new Error("the upstream download is closed");
    try {
      if (reader instanceof ReadableStreamBYOBReader) {
        const { done, value } = await reader.read(into);
        return done ? undefined : value;
      }
      // Not a byte stream: copy what fits, keep the rest for the next read.
      if (!this.#rest || this.#rest.byteLength === 0) {
        const { done, value } = await reader.read();
        if (done) return undefined;
        this.#rest = value;
      }
      const n = Math.min(into.byteLength, this.#rest.byteLength);
      into.set(this.#rest.subarray(0, n));
      this.#rest = this.#rest.subarray(n);
      return into.subarray(0, n);
    } catch (error) {
      this.#broken = error;
      throw error;
    }
  }
}

function readerOf(
  body: ReadableStream<Uint8Array>,
): ReadableStreamBYOBReader | ReadableStreamDefaultReader<Uint8Array> {
  try {
    return body.getReader({ mode: "byob" });
  } catch {
    return body.getReader();
  }
}
