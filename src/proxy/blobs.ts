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
   * session, later ones as they are appended; the stream errors when the fill fails.
   */
  follow(range?: ByteRange): ReadableStream<Uint8Array> {
    let position = range?.start ?? 0;
    const end = range ? range.end + 1 : this.size;
    let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
    /** How far the open reader may go. */
    let limit = 0;
    const release = () => {
      const current = reader;
      reader = undefined;
      current?.cancel().catch(() => {});
    };
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        while (true) {
          if (position >= end) {
            release();
            controller.close();
            return;
          }
          if (reader) {
            const { done, value } = await reader.read();
            if (done || value.byteLength === 0) {
              reader = undefined;
              continue;
            }
            const bytes = value.byteLength > limit - position
              ? value.subarray(0, limit - position)
              : value;
            position += bytes.byteLength;
            if (position >= limit) release();
            controller.enqueue(bytes);
            return;
          }
          if (this.#failed) throw this.failure(this.#error);
          const ready = Math.min(end, this.#readable());
          if (position < ready) {
            limit = ready;
            reader = (await this.#openAt(position)).getReader();
            continue;
          }
          await new Promise<void>((resolve) => this.#waiters.push(resolve));
        }
      },
      // The client went away: the fill goes on for the store.
      cancel: () => release(),
    });
  }

  /** The error a reader answers with when the fill failed. */
  failure(error: unknown): RegistryError {
    const route = this.#target.route;
    if (error instanceof RegistryError && error.kind === "DIGEST_INVALID") {
      return upstreamFailure(route, new Error(`wrong bytes for ${this.#target.digest.value}`));
    }
    return upstreamFailure(route, error);
  }

  /** Bytes a follower may read now: all once verified, else all stored but the last byte. */
  #readable(): number {
    return this.#verified ? this.size : Math.min(this.#stored, this.size - 1);
  }

  /** A stream of the blob from `position`: the session while it exists, else the stored blob. */
  async #openAt(position: number): Promise<ReadableStream<Uint8Array>> {
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
        // The session hashes what it stores, once; the commit refuses a wrong digest.
        await uploads.append(name, id, {
          body: upstream.segment(length),
          length,
          start: this.#stored,
        });
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
 * The upstream's response body, read with BYOB reads into one reused buffer (large reads, no
 * per-chunk allocation) and resumed with a `Range` request when the connection breaks.
 */
class UpstreamBody {
  readonly #open: (offset: number) => Promise<ReadableStream<Uint8Array>>;
  readonly #counted: (n: number) => void;
  #reader: ReadableStreamBYOBReader | ReadableStreamDefaultReader<Uint8Array> | undefined;
  #buffer: ArrayBuffer = new ArrayBuffer(READ_BUFFER);
  #received = 0;
  #resumes = 0;

  constructor(
    open: (offset: number) => Promise<ReadableStream<Uint8Array>>,
    counted: (n: number) => void,
  ) {
    this.#open = open;
    this.#counted = counted;
  }

  /** Open the download. */
  async start(): Promise<void> {
    this.#reader = readerOf(await this.#open(0));
  }

  /**
   * The next `length` bytes as a stream whose chunks are views of the reused buffer: each is
   * consumed (copied or written) before the next read, which the zero high-water mark ensures.
   */
  segment(length: number): ReadableStream<Uint8Array> {
    let left = length;
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        if (left === 0) {
          controller.close();
          return;
        }
        const bytes = await this.#read(Math.min(left, READ_BUFFER));
        if (!bytes) {
          throw new Error(`the upstream ended ${left} bytes before the blob's size`);
        }
        left -= bytes.byteLength;
        this.#counted(bytes.byteLength);
        controller.enqueue(bytes);
      },
    }, { highWaterMark: 0 });
  }

  /** Stop reading (the rest of the body is not needed). */
  async close(): Promise<void> {
    const reader = this.#reader;
    this.#reader = undefined;
    await reader?.cancel().catch(() => {});
  }

  async #read(max: number): Promise<Uint8Array | undefined> {
    while (true) {
      const reader = this.#reader;
      if (!reader) throw new Error("the upstream download is closed");
      try {
        let bytes: Uint8Array | undefined;
        if (reader instanceof ReadableStreamBYOBReader) {
          const { done, value } = await reader.read(new Uint8Array(this.#buffer, 0, max));
          if (value) this.#buffer = value.buffer as ArrayBuffer;
          bytes = done ? undefined : value;
        } else {
          const { done, value } = await reader.read();
          bytes = done ? undefined : value;
        }
        if (bytes) this.#received += bytes.byteLength;
        return bytes;
      } catch (error) {
        if (error instanceof ClientError || this.#resumes >= RESUMES) throw error;
        this.#resumes++;
        await reader.cancel().catch(() => {});
        this.#buffer = new ArrayBuffer(READ_BUFFER);
        this.#reader = readerOf(await this.#open(this.#received));
      }
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
