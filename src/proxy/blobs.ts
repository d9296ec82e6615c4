/**
 * Blobs of mirrored repositories: a decorator over the blob service. A missing blob is fetched
 * once from the upstream (one fill per digest, however many clients ask) into an upload session,
 * so its digest is verified before it becomes visible. Every client follows the fill: the bytes
 * fetched last are kept in a ring in memory, from which clients that keep up copy them; a client
 * that falls behind the ring reads the part already stored from the session's file (memory stays
 * flat, a slow client never holds the fill back). The last byte goes out only once the digest
 * matched. A client that goes away does not stop the fill.
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

/**
 * Bytes of a fill kept in memory for the clients that keep up: the last ones fetched. Those
 * before them are surely in the session's file (its writer holds a few MiB at most).
 */
export const FILL_RING = 16 << 20;
/** Largest read from the upstream connection. */
const READ_BUFFER = 1 << 20;
/** Bytes fetched between wakes of the clients following a fill. */
const WAKE_STEP = 1 << 20;
/** Times a broken or unanswered upstream download is tried again (`Range`) before the fill fails. */
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
    // Being fetched already: served by that fill, without asking the upstream again.
    const running = this.#fills.get(digest.value);
    if (running) {
      counters.hits++;
      return running.size;
    }
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
  /** The whole blob is in the session's file. */
  #appended = false;
  /** Bytes fetched from the upstream (the last of them are in the ring). */
  #received = 0;
  readonly #ring: Ring;
  /** The digest matched: the last byte may go out. */
  #verified = false;
  #committed = false;
  #failed = false;
  #error: unknown;
  #waiters: (() => void)[] = [];

  constructor(store: Store, uploads: UploadService, target: FillTarget) {
    this.size = target.size;
    this.#ring = new Ring(Math.max(1, Math.min(FILL_RING, target.size)));
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
   * The blob (or `range` of it) as the fill fetches it: from the ring while the reader keeps up,
   * else from the session's file; reads fail when the fill fails. The stream is a
   * {@link FileStream} over a {@link Follower}, which the HTTP server sends the way it sends a
   * stored blob (large reads into one reused buffer, no stream machinery per chunk).
   */
  follow(range?: ByteRange): ReadableStream<Uint8Array> {
    const start = range?.start ?? 0;
    const end = range ? range.end + 1 : this.size;
    return new FileStream(new Follower(this, start, end), end - start);
  }

  /** Bytes a follower may read now: all once verified, else all fetched but the last byte. */
  readable(): number {
    if (this.#failed) throw this.failure(this.#error);
    return this.#verified ? this.size : Math.min(this.#received, this.size - 1);
  }

  /** Bytes surely in the session's file: all once appended, else those behind the ring. */
  get stored(): number {
    return this.#appended ? this.size : Math.max(0, this.#received - this.#ring.size);
  }

  /** Whether the whole blob is in the session's file. */
  get appended(): boolean {
    return this.#appended;
  }

  /**
   * Copy the bytes from `position` into `into` from the ring; how many (0 when the position is
   * no longer in the ring). The caller keeps within {@link readable}.
   */
  copy(position: number, into: Uint8Array): number {
    if (position < this.#received - this.#ring.size || position >= this.#received) return 0;
    const n = Math.min(into.byteLength, this.#received - position);
    this.#ring.read(position, into.subarray(0, n));
    return n;
  }

  /**
   * The next bytes fetched (a resumed download goes on where the broken one stopped). Followers
   * are woken at each MiB and at the end, not for every piece the connection hands over: each
   * wake is a write to a client's socket, and small ones cost more per byte.
   */
  #fetched(bytes: Uint8Array): void {
    const before = this.#received;
    this.#ring.write(before, bytes);
    this.#received += bytes.byteLength;
    if (
      Math.floor(before / WAKE_STEP) !== Math.floor(this.#received / WAKE_STEP) ||
      this.#received === this.size
    ) this.#wake();
  }

  /** Resolves at the fill's next step (more bytes fetched or stored, verified, committed, failed). */
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
      (bytes) => {
        counters.bytesFetched += bytes.byteLength;
        this.#fetched(bytes);
      },
    );
    const id = await uploads.start(name);
    this.#id = id;
    try {
      await upstream.start();
      // One append of the whole blob: one writer, which flushes to disk as it goes (the commit's
      // fsync finds little left); the session hashes what it stores, once, and the commit refuses
      // a wrong digest. A broken download is resumed inside the body, where it stopped.
      if (size > 0) {
        await uploads.append(name, id, { body: upstream.body(size), length: size, start: 0 });
      }
      this.#appended = true;
      this.#wake();
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
  /** Where the open file or stream is (reads from the ring move `#position` on without it). */
  #at = -1;
  /** The session's (or blob's) file, positioned at `#at`. */
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
      const copied = this.#fill.copy(this.#position, p.subarray(0, want));
      if (copied > 0) {
        this.#position += copied;
        return copied;
      }
      // Behind the ring: from the session's file, as far as it is stored.
      const stored = Math.min(ready, this.#fill.stored);
      if (this.#position >= stored) {
        await this.#fill.changed();
        continue;
      }
      if (this.#at !== this.#position) this.#drop();
      if (!this.#file && !this.#reader) await this.#open(stored);
      const into = p.subarray(0, Math.min(want, stored - this.#position));
      const n = this.#file ? await this.#file.read(into) : await this.#fromStream(into);
      if (n === null || n === 0) {
        if (!this.#file) continue;
        // The writer is a little later than the ring said: wait for it.
        if (this.#fill.appended) throw new Error("the fill's file ended before its size");
        await this.#fill.changed();
        continue;
      }
      this.#position += n;
      this.#at = this.#position;
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
    this.#at = this.#position;
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
    this.#at = -1;
    try {
      file?.close();
    } catch {
      // Already closed.
    }
    reader?.cancel().catch(() => {});
  }
}

/**
 * The upstream's response body as a byte stream. It is read in large pieces into a buffer of its
 * own (BYOB reads when `fetch`'s body is a byte stream), each shown to `fetched` and copied into
 * the reader's buffer. A broken download is resumed with a `Range` request from the first byte
 * not yet read, up to {@link RESUMES} times (a resume that gets no answer in time counts as one):
 * what the reader already has stays as it is.
 */
class UpstreamBody {
  readonly #open: (offset: number) => Promise<ReadableStream<Uint8Array>>;
  readonly #fetched: (bytes: Uint8Array) => void;
  #reader: ReadableStreamBYOBReader | ReadableStreamDefaultReader<Uint8Array> | undefined;
  /** Where the upstream's bytes land (a BYOB read hands it back as a new object). */
  #buffer = new ArrayBuffer(READ_BUFFER);
  /** Bytes read so far: where a resumed download starts. */
  #position = 0;
  #resumes = 0;
  /** What is left of the last chunk of a body that is not a byte stream. */
  #rest: Uint8Array | undefined;

  constructor(
    open: (offset: number) => Promise<ReadableStream<Uint8Array>>,
    fetched: (bytes: Uint8Array) => void,
  ) {
    this.#open = open;
    this.#fetched = fetched;
  }

  /** Open the download. */
  async start(): Promise<void> {
    await this.#attempt(() => Promise.resolve());
  }

  /** The `length` bytes of the blob as a byte stream; each read is shown to `fetched` first. */
  body(length: number): ReadableStream<Uint8Array> {
    let left = length;
    return new ReadableStream({
      type: "bytes",
      pull: async (controller) => {
        const request = controller.byobRequest;
        const max = Math.min(left, request?.view?.byteLength ?? READ_BUFFER, READ_BUFFER);
        const bytes = await this.#attempt(() => this.#read(max));
        if (!bytes) throw new Error(`the upstream ended ${left} bytes before the blob's size`);
        this.#position += bytes.byteLength;
        left -= bytes.byteLength;
        this.#fetched(bytes);
        const view = request?.view;
        if (request && view) {
          new Uint8Array(view.buffer, view.byteOffset, bytes.byteLength).set(bytes);
          request.respond(bytes.byteLength);
        } else controller.enqueue(bytes.slice());
        if (left === 0) controller.close();
      },
    });
  }

  /**
   * Run `work` on the download, opened (again) at the first byte not yet read when it is not: a
   * broken connection or an attempt the upstream does not answer in time is tried again.
   */
  async #attempt<T>(work: () => Promise<T>): Promise<T> {
    for (;;) {
      try {
        this.#reader ??= readerOf(await this.#open(this.#position));
        return await work();
      } catch (error) {
        const again = !(error instanceof ClientError) || error.kind === "unreachable";
        if (!again || this.#resumes >= RESUMES) throw error;
        this.#resumes++;
        await this.close();
      }
    }
  }

  /** Stop reading (the rest of the body is not needed). */
  async close(): Promise<void> {
    const reader = this.#reader;
    this.#reader = undefined;
    this.#rest = undefined;
    await reader?.cancel().catch(() => {});
  }

  /**
   * Read up to `max` bytes into the buffer; the bytes read (a view of it, valid until the next
   * read), `undefined` at the end. A failed read loses the buffer: a new one is made.
   */
  async #read(max: number): Promise<Uint8Array<ArrayBuffer> | undefined> {
    const reader = this.#reader;
    if (!reader) throw new Error("the upstream download is closed");
    if (this.#buffer.byteLength === 0) this.#buffer = new ArrayBuffer(READ_BUFFER);
    const into = new Uint8Array(this.#buffer, 0, max);
    if (reader instanceof ReadableStreamBYOBReader) {
      const { done, value } = await reader.read(into);
      if (value) this.#buffer = value.buffer;
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
  }
}

/** The last `size` bytes of a stream, by their position in it. */
class Ring {
  readonly size: number;
  readonly #bytes: Uint8Array;

  constructor(size: number) {
    this.size = size;
    this.#bytes = new Uint8Array(size);
  }

  /** Keep `bytes` (at most `size` of them), which are the stream's from `at`. */
  write(at: number, bytes: Uint8Array): void {
    this.#each(at, bytes.byteLength, (offset, from, n) => {
      this.#bytes.set(bytes.subarray(from, from + n), offset);
    });
  }

  /** Copy the bytes from `at` into `into` (they must still be kept). */
  read(at: number, into: Uint8Array): void {
    this.#each(at, into.byteLength, (offset, from, n) => {
      into.set(this.#bytes.subarray(offset, offset + n), from);
    });
  }

  /** The ring's pieces of `length` bytes from stream position `at`: (ring offset, index, n). */
  #each(at: number, length: number, piece: (offset: number, from: number, n: number) => void) {
    let done = 0;
    while (done < length) {
      const offset = (at + done) % this.size;
      const n = Math.min(length - done, this.size - offset);
      piece(offset, done, n);
      done += n;
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
