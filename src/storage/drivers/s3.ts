/**
 * The S3 storage driver: distribution's tree as object keys (`<rootdirectory>/docker/registry/v2/
 * ...`, the keys distribution's S3 driver uses, so both serve one bucket) in any S3-compatible
 * store.
 *
 * A file being written is an S3 multipart upload whose state (upload id, parts so far, the tail
 * shorter than a part) lives in the bucket beside the path, so any process can resume a writer
 * another one left, and a process that dies loses at most the parts it was sending (parts it stored
 * but did not record yet are found in the upload by the next writer).
 *
 * @module
 */
import {
  checkPath,
  type FileInfo,
  type FileReader,
  type FileWriter,
  type ReadOptions,
  type RedirectOptions,
  SizeMismatch,
  type StorageDriver,
  type WriteOptions,
  WriterBusy,
  type WriterOptions,
} from "../driver.ts";
import { StorageLease } from "../lease.ts";
import type { S3Config } from "../../config.ts";
import { writeBatched } from "./batch_writer.ts";
import { type CompletedPart, S3Client, type S3ClientOptions } from "./s3_client.ts";

/** Options of the S3 driver. */
export interface S3DriverOptions extends S3ClientOptions {
  /** Key prefix of the tree (no leading or trailing `/`; may be empty). */
  rootDirectory: string;
  /** Part size of multipart uploads (at least 5 MiB). */
  chunkSize: number;
  /** Objects at least this large are copied part by part. */
  multipartCopyThresholdSize: number;
  /** Part size of multipart copies (at least 5 MiB). */
  multipartCopyChunkSize: number;
}

/** Driver options from the `storage.s3` configuration. */
export function s3DriverOptions(config: S3Config): S3DriverOptions {
  return {
    endpoint: config.regionEndpoint,
    region: config.region,
    bucket: config.bucket,
    accessKey: config.accessKey,
    secretKey: config.secretKey,
    ...(config.sessionToken && { sessionToken: config.sessionToken }),
    pathStyle: config.forcePathStyle,
    rootDirectory: config.rootDirectory,
    chunkSize: config.chunkSize,
    multipartCopyThresholdSize: config.multipartCopyThresholdSize,
    multipartCopyChunkSize: config.multipartCopyChunkSize,
  };
}

/** The persisted state of a writer (JSON in the object beside its path). */
interface WriterState {
  /** The open multipart upload, once the first part was sent. */
  uploadId?: string;
  /** Bytes 0..sealed-1 are the object at the path itself (after a {@link S3Writer.readBack}). */
  sealed: number;
  /** Parts sent after the sealed bytes. */
  parts: { partNumber: number; etag: string; size: number }[];
  /** Key of the object holding the bytes after the last part, if any. */
  tail?: string;
  /** Its size. */
  tailSize: number;
  /**
   * Parts stored after the last one here by a write that failed and was rolled back: they stay in
   * the upload (until a later write sends their numbers again) and must not be taken for parts a
   * dead writer stored but did not record ({@link withStoredParts}).
   */
  stale?: { partNumber: number; etag: string }[];
}

/** Suffix of a writer's state object, beside the path it writes. */
const STATE_SUFFIX = ".s3writer";
/** Infix of a writer's tail objects. */
const TAIL_INFIX = ".s3tail.";
/** Suffix of the folder of a writer's lease, beside the path it writes. */
const LEASE_SUFFIX = ".s3lease";
/**
 * How long a writer's lease lasts unless renewed (renewed every fifth of it while writing): the
 * time a session stays locked after its writer's process died mid-write.
 */
const WRITE_LEASE_MS = 10_000;
/** How often a cancel waiting for a writer's lease tries again. */
const LEASE_POLL_MS = 250;
/** S3's smallest part (but the last). */
const MIN_PART = 5 * 1024 * 1024;
/**
 * A presigned URL is handed out again for this long (seconds); it is signed for that much longer
 * than asked, so every URL handed out is valid at least as long as asked.
 */
const URL_REUSE_SECONDS = 60;
/** Presigned URLs remembered at most (the oldest are forgotten first). */
const MAX_URLS = 10_000;

/** The S3 driver. */
export class S3Driver implements StorageDriver {
  /** Distribution's name of its S3 driver. */
  readonly name = "s3aws";
  readonly #client: S3Client;
  readonly #options: S3DriverOptions;
  readonly #prefix: string;
  /** `<method> <expiry> <key>` → a presigned URL and when it was signed (ms), oldest first. */
  readonly #urls = new Map<string, { url: string; at: number }>();

  /** A driver over the bucket `options` names. */
  constructor(options: S3DriverOptions) {
    if (options.chunkSize < MIN_PART) throw new Error("S3 chunk size must be at least 5 MiB");
    this.#options = options;
    this.#client = new S3Client(options);
    this.#prefix = options.rootDirectory.replace(/^\/+|\/+$/g, "");
  }

  /** The S3 client (health checks, tests). */
  get client(): S3Client {
    return this.#client;
  }

  /** The object key of a path. */
  key(path: string): string {
    checkPath(path);
    const clean = path.slice(1);
    return this.#prefix ? (clean ? `${this.#prefix}/${clean}` : this.#prefix) : clean;
  }

  /** The key prefix of everything under a directory path. */
  #dirPrefix(path: string): string {
    const key = this.key(path);
    return key === "" ? "" : `${key}/`;
  }

  #pathOf(key: string): string {
    return "/" + (this.#prefix ? key.slice(this.#prefix.length + 1) : key);
  }

  /** {@inheritDoc StorageDriver.getContent} */
  async getContent(path: string): Promise<Uint8Array<ArrayBuffer> | undefined> {
    return await this.#client.getBytes(this.key(path));
  }

  /** {@inheritDoc StorageDriver.putContent} */
  async putContent(path: string, content: Uint8Array): Promise<void> {
    await this.#client.put(this.key(path), content.slice());
  }

  /** {@inheritDoc StorageDriver.reader} */
  async reader(path: string, options: ReadOptions = {}): Promise<FileReader | undefined> {
    const key = this.key(path);
    const offset = options.offset ?? 0;
    const { length, signal } = options;
    if (length === 0) {
      const info = await this.#client.head(key, signal);
      return info && { size: info.size, body: emptyStream() };
    }
    const ranged = offset > 0 || length !== undefined;
    const range = ranged
      ? { start: offset, ...(length !== undefined && { end: offset + length - 1 }) }
      : undefined;
    const response = await this.#client.get(key, range, signal);
    if (!response) return undefined;
    if (response.status === 416) {
      // The range starts past the end: an empty body, and the size from a HEAD.
      const info = await this.#client.head(key, signal);
      return info && { size: info.size, body: emptyStream() };
    }
    const total = /\/(\d+)$/.exec(response.headers.get("content-range") ?? "")?.[1];
    const size = Number(total ?? response.headers.get("content-length") ?? 0);
    return { size, body: response.body ?? emptyStream() };
  }

  /** {@inheritDoc StorageDriver.writer} */
  async writer(path: string, options: WriterOptions = {}): Promise<FileWriter | undefined> {
    const key = this.key(path);
    const existing = await this.#state(key);
    if (options.append) {
      if (!existing) return undefined;
      const state = await withStoredParts(this.#client, key, existing);
      return new S3Writer(this, path, state, JSON.stringify(existing), this.#options);
    }
    if (existing) await dropWriter(this.#client, key, existing);
    const state: WriterState = { sealed: 0, parts: [], tailSize: 0 };
    const json = JSON.stringify(state);
    await this.#client.put(key + STATE_SUFFIX, json);
    return new S3Writer(this, path, state, json, this.#options);
  }

  /** {@inheritDoc StorageDriver.stat} */
  async stat(path: string): Promise<FileInfo | undefined> {
    const key = this.key(path);
    if (path === "/") {
      // The root is there while the bucket is, even with nothing stored yet.
      const exists = await this.#client.bucketExists();
      return exists ? { path, size: 0, modifiedAt: new Date(0), isDir: true } : undefined;
    }
    if (key !== "") {
      const info = await this.#client.head(key);
      if (info) return { path, size: info.size, modifiedAt: info.modifiedAt, isDir: false };
    }
    for await (const entry of this.#client.list(this.#dirPrefix(path), { maxKeys: 1 })) {
      const modifiedAt = entry.kind === "object" ? entry.modifiedAt : new Date(0);
      return { path, size: 0, modifiedAt, isDir: true };
    }
    return undefined;
  }

  /** {@inheritDoc StorageDriver.list} */
  async list(path: string): Promise<string[] | undefined> {
    const prefix = this.#dirPrefix(path);
    const names = new Set<string>();
    let any = false;
    for await (const entry of this.#client.list(prefix, { delimiter: "/" })) {
      any = true;
      if (entry.kind === "prefix") {
        // A writer's lease folder is hidden beside its path (its own listing shows its files).
        if (!entry.prefix.endsWith(`${LEASE_SUFFIX}/`)) {
          names.add(entry.prefix.slice(prefix.length).replace(/\/$/, ""));
        }
      } else if (!isWriterFile(entry.key)) names.add(entry.key.slice(prefix.length));
    }
    return any ? [...names] : undefined;
  }

  /** {@inheritDoc StorageDriver.walk} */
  async *walk(path: string): AsyncIterable<FileInfo> {
    for await (const entry of this.#client.list(this.#dirPrefix(path))) {
      if (entry.kind === "object" && !isWriterObject(entry.key)) {
        yield {
          path: this.#pathOf(entry.key),
          size: entry.size,
          modifiedAt: entry.modifiedAt,
          isDir: false,
        };
      }
    }
  }

  /** {@inheritDoc StorageDriver.move} */
  async move(from: string, to: string): Promise<boolean> {
    const source = this.key(from);
    const target = this.key(to);
    const info = await this.#client.head(source);
    if (!info) return false;
    if (info.size < this.#options.multipartCopyThresholdSize) {
      await this.#client.copy(source, target);
    } else {
      await multipartCopy(this.#client, source, target, info.size, this.#options);
    }
    await this.#client.delete(source);
    return true;
  }

  /** {@inheritDoc StorageDriver.delete} */
  async delete(path: string): Promise<boolean> {
    const key = this.key(path);
    const keys: string[] = [];
    // The file at this very path, and a pending writer of it (at once: two round trips in one).
    const [file, own] = await Promise.all([
      key === "" ? undefined : this.#client.head(key),
      this.#state(key),
    ]);
    if (file) keys.push(key);
    if (own) {
      await dropWriter(this.#client, key, own);
      keys.push(key + STATE_SUFFIX);
    }
    for await (const entry of this.#client.list(this.#dirPrefix(path))) {
      if (entry.kind !== "object") continue;
      if (entry.key.endsWith(STATE_SUFFIX)) {
        const written = entry.key.slice(0, -STATE_SUFFIX.length);
        const state = await this.#state(written);
        if (state?.uploadId) {
          await this.#client.abortMultipart(written, state.uploadId).catch(() => {});
        }
      }
      keys.push(entry.key);
    }
    if (keys.length === 0) return false;
    await this.#client.deleteMany([...new Set(keys)]);
    return true;
  }

  /**
   * Create a file only if nothing is at `path` (an S3 conditional write); `false` when something
   * is. Leases are built on it.
   */
  async createExclusive(path: string, content: Uint8Array): Promise<boolean> {
    return await this.#client.putIfAbsent(this.key(path), content.slice());
  }

  /** {@inheritDoc StorageDriver.redirectUrl} */
  async redirectUrl(path: string, options: RedirectOptions): Promise<string | undefined> {
    const key = this.key(path);
    const id = `${options.method} ${options.expiresIn} ${key}`;
    const now = Date.now();
    const reuse = URL_REUSE_SECONDS * 1000;
    const signed = this.#urls.get(id);
    if (signed && now - signed.at < reuse) return signed.url;
    const expires = options.expiresIn + URL_REUSE_SECONDS;
    const url = await this.#client.presign(key, expires, options.method);
    this.#urls.delete(id);
    this.#urls.set(id, { url, at: now });
    for (const [old, { at }] of this.#urls) {
      if (this.#urls.size <= MAX_URLS && now - at < reuse) break;
      this.#urls.delete(old);
    }
    return url;
  }

  /**
   * Whether the bucket answers and (with `write`) takes a write: `"ok"`, or what is wrong. The
   * probe object is removed at once.
   */
  async health(write = false): Promise<string> {
    try {
      if (!(await this.#client.bucketExists())) return `bucket ${this.#client.bucket} not found`;
      if (write) {
        const probe = this.key(`/docker/registry/v2/_healthz/${crypto.randomUUID()}`);
        await this.#client.put(probe, "ok");
        await this.#client.delete(probe);
      }
      return "ok";
    } catch (error) {
      return `unreachable: ${(error as Error).message}`;
    }
  }

  /** {@inheritDoc StorageDriver.close} */
  close(): void {}

  async #state(key: string): Promise<WriterState | undefined> {
    return key === "" ? undefined : await readState(this.#client, key);
  }
}

/** The number of a writer's last part sent, 0 before the first. */
function lastPart(state: WriterState): number {
  return state.parts.at(-1)?.partNumber ?? 0;
}

/**
 * `state` with the parts stored in its upload after the last one it records: the parts of a write
 * whose process died before the state was written again. They count from the next number on,
 * without a gap and up to a stale one (a missing part ends them; those after it are sent again).
 * The first of them starts with the tail's bytes (a write loads the tail into its first part), so
 * the tail no longer counts once one is found.
 */
async function withStoredParts(
  client: S3Client,
  key: string,
  state: WriterState,
): Promise<WriterState> {
  if (!state.uploadId) return state;
  let expected = lastPart(state) + 1;
  const stale = new Map(state.stale?.map((p) => [p.partNumber, p.etag]));
  const stored = await client.listParts(key, state.uploadId, expected - 1);
  const found: WriterState["parts"] = [];
  for (const part of stored ?? []) {
    if (part.partNumber !== expected || stale.get(part.partNumber) === part.etag) break;
    found.push(part);
    expected++;
  }
  if (found.length === 0) return state;
  const { tail: _tail, stale: _stale, ...rest } = state;
  const later = state.stale?.filter((p) => p.partNumber >= expected) ?? [];
  return {
    ...rest,
    parts: [...state.parts, ...found],
    tailSize: 0,
    ...(later.length > 0 && { stale: later }),
  };
}

/** The persisted state of the writer of `key`, if any. */
async function readState(client: S3Client, key: string): Promise<WriterState | undefined> {
  const bytes = await client.getBytes(key + STATE_SUFFIX);
  return bytes ? JSON.parse(new TextDecoder().decode(bytes)) as WriterState : undefined;
}

/** A writer's state or tail object. */
function isWriterFile(key: string): boolean {
  return key.endsWith(STATE_SUFFIX) || key.includes(TAIL_INFIX);
}

/** A writer's state, tail or lease object. */
function isWriterObject(key: string): boolean {
  return isWriterFile(key) || key.includes(`${LEASE_SUFFIX}/`);
}

function emptyStream(): ReadableStream<Uint8Array> {
  return new ReadableStream({ start: (c) => c.close() });
}

/** Abort a writer's upload and remove its tails and lease (not its state object). */
async function dropWriter(client: S3Client, key: string, state: WriterState): Promise<void> {
  if (state.uploadId) await client.abortMultipart(key, state.uploadId).catch(() => {});
  const doomed: string[] = [];
  for await (const entry of client.list(key + ".s3")) {
    if (entry.kind === "object" && entry.key !== key + STATE_SUFFIX) doomed.push(entry.key);
  }
  if (doomed.length > 0) await client.deleteMany(doomed);
}

/** Ranges of at most `chunk` bytes covering `size`, none but the last under 5 MiB. */
function copyRanges(size: number, chunk: number): { start: number; end: number }[] {
  const ranges: { start: number; end: number }[] = [];
  for (let start = 0; start < size; start += chunk) {
    ranges.push({ start, end: Math.min(size, start + chunk) - 1 });
  }
  const last = ranges.at(-1);
  if (ranges.length > 1 && last && last.end - last.start + 1 < MIN_PART) {
    ranges.pop();
    ranges.at(-1)!.end = last.end;
  }
  return ranges;
}

/** Copy the first `size` bytes of `source` as parts of upload `uploadId` of `target`. */
async function copyParts(
  client: S3Client,
  target: string,
  uploadId: string,
  source: string,
  size: number,
  chunk: number,
  firstPart = 1,
): Promise<{ partNumber: number; etag: string; size: number }[]> {
  const ranges = copyRanges(size, chunk);
  const parts: { partNumber: number; etag: string; size: number }[] = [];
  let next = 0;
  // A few server-side part copies at a time.
  const worker = async () => {
    while (next < ranges.length) {
      const i = next++;
      const range = ranges[i]!;
      const partNumber = firstPart + i;
      const etag = await client.uploadPartCopy(target, uploadId, partNumber, source, range);
      parts[i] = { partNumber, etag, size: range.end - range.start + 1 };
    }
  };
  await Promise.all(Array.from({ length: Math.min(4, ranges.length) }, worker));
  return parts;
}

async function multipartCopy(
  client: S3Client,
  source: string,
  target: string,
  size: number,
  options: S3DriverOptions,
): Promise<void> {
  const uploadId = await client.createMultipart(target);
  try {
    const parts = await copyParts(
      client,
      target,
      uploadId,
      source,
      size,
      options.multipartCopyChunkSize,
    );
    await client.completeMultipart(target, uploadId, parts);
  } catch (error) {
    await client.abortMultipart(target, uploadId).catch(() => {});
    throw error;
  }
}

/** A part being sent: its buffer stays untouched until the upload settles (retries resend it). */
interface PartInFlight {
  partNumber: number;
  buffer: Uint8Array<ArrayBuffer>;
  /** Resolves once the part is stored (its buffer is free then). */
  stored: Promise<void>;
}

/** No buffer (between parts, or after the writer is done). */
const EMPTY = new Uint8Array(0);

/** Parts sent at once by one writer; each holds a part-sized buffer. */
const PARTS_IN_FLIGHT = 2;

/**
 * A file being written as a multipart upload. Bytes gather in a part-sized buffer; a full buffer is
 * sent as a part while the next one fills (at most {@link PARTS_IN_FLIGHT} part buffers per writer:
 * when both are being sent, reading waits for the older one). A part counts once it and every part
 * before it are stored; the state object is rewritten in the background then (one write at a time,
 * off the path of the next part), and before `write` returns. A `write` ends by sending the rest
 * of the buffer as a part when S3 takes it as one (at least 5 MiB; parts may differ in size), else
 * by storing it as a tail object, so the file can be resumed from any process. A process that dies
 * in the middle of a write leaves stored parts the state does not list yet: the next writer counts
 * them ({@link withStoredParts}).
 */
class S3Writer implements FileWriter {
  readonly #driver: S3Driver;
  readonly #client: S3Client;
  readonly #path: string;
  readonly #key: string;
  readonly #options: S3DriverOptions;
  #state: WriterState;
  /**
   * The state object as this writer last read or wrote it: a write goes ahead only if the bucket
   * still holds it (`#state` may have more: parts found stored but not recorded).
   */
  #persisted: string;
  /** Set when the lease of the write under way was lost: no more state writes. */
  #leaseLost = false;
  /** The bytes after the last part (the tail), in a part-sized buffer once writing. */
  #buffer: Uint8Array<ArrayBuffer> = EMPTY;
  #filled = 0;
  /** Part buffers free for reuse. */
  #spare: Uint8Array<ArrayBuffer>[] = [];
  /** Parts being sent, oldest first. */
  #inFlight: PartInFlight[] = [];
  /** Settles when the last part sent is in `#state.parts` (after those before it). */
  #recorded: Promise<void> = Promise.resolve();
  /** The state write under way in the background, if any. */
  #saving: Promise<void> | undefined;
  /** Parts were added since the state write under way began. */
  #unsaved = false;
  /** The first background state write that failed. */
  #saveFailure: unknown;
  /** Whether `#buffer` holds the tail (it is loaded lazily). */
  #loaded = false;
  #finished = false;

  constructor(
    driver: S3Driver,
    path: string,
    state: WriterState,
    persisted: string,
    options: S3DriverOptions,
  ) {
    this.#driver = driver;
    this.#client = driver.client;
    this.#path = path;
    this.#key = driver.key(path);
    this.#state = state;
    this.#persisted = persisted;
    this.#options = options;
  }

  /**
   * Run `fn` as the only writer of the file among all processes: under a lease in the bucket
   * (renewed while `fn` runs), and only if the state in the bucket is still the one this writer
   * holds (unless `anyState`); else {@link WriterBusy}. With `waitMs`, a lease held by another
   * request is waited for that long first. With `endsWriter`, a successful `fn` leaves the lease to
   * be removed with the writer's other objects (no release first). A lease whose holder died lapses
   * after {@link WRITE_LEASE_MS}.
   */
  async #exclusive<T>(
    fn: () => Promise<T>,
    options: { waitMs?: number; anyState?: boolean; endsWriter?: boolean } = {},
  ): Promise<T> {
    const lease = new StorageLease(
      this.#driver,
      this.#path + LEASE_SUFFIX,
      crypto.randomUUID(),
      WRITE_LEASE_MS,
    );
    const deadline = Date.now() + (options.waitMs ?? 0);
    while (!(await lease.acquire())) {
      if (Date.now() >= deadline) throw new WriterBusy(this.#path);
      await new Promise((resolve) => setTimeout(resolve, LEASE_POLL_MS));
    }
    this.#leaseLost = false;
    let renewing: Promise<void> | undefined;
    const timer = setInterval(() => {
      renewing ??= lease.renew().then(
        (held) => void (this.#leaseLost ||= !held),
        () => {/* a failed renewal is retried at the next tick; the lease lapses otherwise */},
      ).finally(() => renewing = undefined);
    }, WRITE_LEASE_MS / 5);
    Deno.unrefTimer(timer);
    let release = true;
    try {
      const current = await readState(this.#client, this.#key);
      if (!options.anyState && JSON.stringify(current) !== this.#persisted) {
        throw new WriterBusy(this.#path);
      }
      const result = await fn();
      release = !options.endsWriter;
      return result;
    } finally {
      clearInterval(timer);
      await renewing;
      if (release) await lease.release().catch(() => {});
    }
  }

  /** Persist `state` as the writer's state, unless the lease was lost meanwhile. */
  async #putState(state: WriterState): Promise<void> {
    if (this.#leaseLost) throw new WriterBusy(this.#path);
    const json = JSON.stringify(state);
    await this.#client.put(this.#key + STATE_SUFFIX, json);
    this.#persisted = json;
  }

  get size(): number {
    const s = this.#state;
    return s.sealed + s.parts.reduce((n, p) => n + p.size, 0) + s.tailSize;
  }

  async write(body: ReadableStream<Uint8Array>, options: WriteOptions = {}): Promise<number> {
    this.#live();
    try {
      return await this.#exclusive(() => this.#write(body, options));
    } catch (error) {
      if (error instanceof WriterBusy) await body.cancel(error).catch(() => {});
      throw error;
    }
  }

  async #write(body: ReadableStream<Uint8Array>, options: WriteOptions): Promise<number> {
    await this.#prepare();
    const before = structuredClone(this.#state);
    const tailBefore = this.#buffer.slice(0, this.#filled);
    const sink = {
      write: async (bytes: Uint8Array) => {
        let offset = 0;
        while (offset < bytes.length) {
          const n = Math.min(bytes.length - offset, this.#buffer.length - this.#filled);
          this.#buffer.set(bytes.subarray(offset, offset + n), this.#filled);
          this.#filled += n;
          offset += n;
          if (this.#filled === this.#buffer.length) await this.#sendPart();
        }
        return bytes.length;
      },
    };
    try {
      const received = await writeBatched(body, sink, options);
      const expected = options.expectedLength;
      if (expected !== undefined && received !== expected) {
        throw new SizeMismatch(expected, received);
      }
      // A tail S3 takes as a part is sent as one: the commit then has nothing left to send.
      if (this.#filled >= MIN_PART) await this.#sendPart();
      await this.#settleAll();
      await this.#saveTail(before.tail);
      return this.size;
    } catch (error) {
      // No part may still be on its way when this call returns.
      const sent = await this.#settleAll().then(() => true, () => false);
      if (sent && options.keepPartial?.(error)) {
        await this.#saveTail(before.tail).catch(() => {});
      } else {
        // Back to the state before the call: its tail object is still there; the parts this call
        // stored stay in the upload, marked stale.
        if (before.uploadId) await this.#markStale(before);
        this.#state = before;
        if (this.#buffer === EMPTY) this.#buffer = this.#takeBuffer();
        this.#buffer.set(tailBefore, 0);
        this.#filled = tailBefore.length;
        await this.#putState(before).catch(() => {});
      }
      throw error;
    }
  }

  /**
   * Mark the parts stored after the last one of `state` stale in it: those of the write being
   * rolled back (listed in the store, which also has the ones whose answer was lost; else the
   * ones this write recorded).
   */
  async #markStale(state: WriterState): Promise<void> {
    const listed = await this.#client.listParts(this.#key, state.uploadId!, lastPart(state))
      .catch(() => undefined);
    const parts = listed ?? this.#state.parts.filter((p) => p.partNumber > lastPart(state));
    if (parts.length > 0) state.stale = parts.map(({ partNumber, etag }) => ({ partNumber, etag }));
  }

  /** Load the tail into the buffer; turn sealed bytes into parts or buffered bytes. */
  async #prepare(): Promise<void> {
    if (this.#loaded) return;
    const chunk = this.#options.chunkSize;
    this.#buffer = new Uint8Array(chunk);
    const s = this.#state;
    if (s.sealed > 0) {
      if (s.sealed >= MIN_PART) {
        // The sealed object becomes the first parts of a new upload (server-side copies).
        const uploadId = await this.#client.createMultipart(this.#key);
        const parts = await copyParts(
          this.#client,
          this.#key,
          uploadId,
          this.#key,
          s.sealed,
          this.#options.multipartCopyChunkSize,
        );
        this.#state = { uploadId, sealed: 0, parts, tailSize: 0 };
      } else {
        // Small: it is the tail (the object at the path stays until the commit replaces it).
        this.#state = { sealed: 0, parts: [], tail: this.#key, tailSize: s.sealed };
      }
      await this.#putState(this.#state);
    }
    const { tail, tailSize } = this.#state;
    if (tail && tailSize > 0) {
      const bytes = await this.#client.get(tail, { start: 0, end: tailSize - 1 });
      const data = bytes ? new Uint8Array(await bytes.arrayBuffer()) : undefined;
      if (!data || data.length !== tailSize) {
        throw new Error(`${this.#key}: the tail of the pending upload is missing or short`);
      }
      this.#buffer.set(data, 0);
    }
    this.#filled = tailSize;
    this.#loaded = true;
  }

  /**
   * Start sending the full buffer as the next part; once it and the parts before it are stored it
   * joins the state, which is written in the background (one write at a time, each with every part
   * stored by then), so the next part's buffer need not wait for that write. Continue in a free
   * part buffer.
   */
  async #sendPart(): Promise<void> {
    const s = this.#state;
    if (!s.uploadId) {
      // Recorded before any part is sent: a process that dies later leaves parts others can find.
      s.uploadId = await this.#client.createMultipart(this.#key);
      await this.#putState(s);
    }
    const uploadId = s.uploadId;
    const partNumber = (this.#inFlight.at(-1)?.partNumber ?? lastPart(s)) + 1;
    const buffer = this.#buffer;
    const size = this.#filled;
    // The last part of a write may be shorter than the buffer: only its bytes go.
    const body = buffer.subarray(0, size);
    const etag = this.#client.uploadPart(this.#key, uploadId, partNumber, body);
    // Awaited in #settleOldest and #settleAll; marked handled now so a failure is not unhandled.
    etag.catch(() => {});
    const recorded = this.#recorded.then(async () => {
      s.parts.push({ partNumber, etag: await etag, size });
      // A stale part sent again is no longer stale.
      const stale = s.stale?.filter((p) => p.partNumber > partNumber) ?? [];
      if (stale.length > 0) s.stale = stale;
      else delete s.stale;
      delete s.tail;
      s.tailSize = 0;
      this.#saveInBackground();
    });
    recorded.catch(() => {});
    this.#recorded = recorded;
    this.#inFlight.push({ partNumber, buffer, stored: etag.then(() => {}) });
    this.#filled = 0;
    this.#buffer = EMPTY;
    if (this.#inFlight.length >= PARTS_IN_FLIGHT) await this.#settleOldest();
    this.#buffer = this.#takeBuffer();
  }

  /** Write the state soon: now, or right after the write under way (which then saw too little). */
  #saveInBackground(): void {
    this.#unsaved = true;
    this.#saving ??= (async () => {
      try {
        while (this.#unsaved) {
          this.#unsaved = false;
          await this.#putState(this.#state);
        }
      } catch (error) {
        this.#saveFailure ??= error;
      } finally {
        this.#saving = undefined;
      }
    })();
  }

  /** A free part buffer. */
  #takeBuffer(): Uint8Array<ArrayBuffer> {
    return this.#spare.pop() ?? new Uint8Array(this.#options.chunkSize);
  }

  /** Wait until the oldest part in flight is stored; free its buffer. */
  async #settleOldest(): Promise<void> {
    const part = this.#inFlight[0]!;
    try {
      await part.stored;
    } finally {
      this.#inFlight.shift();
      this.#spare.push(part.buffer);
    }
    // A lost lease (or a failed state write) stops the write at once.
    if (this.#saveFailure !== undefined) throw this.#saveFailure;
  }

  /**
   * Settle every part in flight and the state writes; the first failure is thrown after all have
   * settled (no state write runs after this returns).
   */
  async #settleAll(): Promise<void> {
    let failure: unknown;
    while (this.#inFlight.length > 0) {
      await this.#settleOldest().catch((error) => failure ??= error);
    }
    await this.#recorded.catch((error) => failure ??= error);
    this.#recorded = Promise.resolve();
    while (this.#saving) await this.#saving;
    failure ??= this.#saveFailure;
    this.#saveFailure = undefined;
    this.#unsaved = false;
    if (failure !== undefined) throw failure;
  }

  /** Store the buffered tail as a new object, then the state; remove the replaced tail object. */
  async #saveTail(previous: string | undefined): Promise<void> {
    const s = this.#state;
    if (this.#filled > 0) {
      const tail = `${this.#key}${TAIL_INFIX}${crypto.randomUUID()}`;
      await this.#client.put(tail, this.#buffer.subarray(0, this.#filled));
      s.tail = tail;
    } else {
      delete s.tail;
    }
    s.tailSize = this.#filled;
    await this.#putState(s);
    if (previous && previous !== s.tail && previous !== this.#key) {
      await this.#client.delete(previous).catch(() => {});
    }
  }

  async readBack(offset = 0): Promise<ReadableStream<Uint8Array>> {
    this.#live();
    const s = this.#state;
    if (s.parts.length > 0 || (s.tail !== undefined && s.tail !== this.#key)) {
      await this.#exclusive(() => this.#seal());
    }
    const size = this.size;
    if (offset >= size) return emptyStream();
    const response = await this.#client.get(this.#key, { start: offset, end: size - 1 });
    if (!response?.body) throw new Error(`${this.#key}: the sealed upload is missing`);
    return response.body;
  }

  /** Make the bytes so far the object at the path (readable); later writes continue after them. */
  async #seal(): Promise<void> {
    await this.#prepare();
    const size = this.size;
    await this.#complete();
    const previousTail = this.#state.tail;
    this.#state = { sealed: size, parts: [], tailSize: 0 };
    this.#buffer = EMPTY;
    this.#filled = 0;
    this.#loaded = false;
    await this.#putState(this.#state);
    if (previousTail && previousTail !== this.#key) {
      await this.#client.delete(previousTail).catch(() => {});
    }
  }

  /** Write the object at the path from the parts and the buffer. */
  async #complete(): Promise<void> {
    const s = this.#state;
    if (!s.uploadId || s.parts.length === 0) {
      // No part: every byte is in the buffer.
      await this.#client.put(this.#key, this.#buffer.subarray(0, this.#filled));
      if (s.uploadId) await this.#client.abortMultipart(this.#key, s.uploadId).catch(() => {});
      return;
    }
    const uploadId = s.uploadId;
    const body = this.#buffer.subarray(0, this.#filled);
    await this.#completeUpload(uploadId, {
      size: body.length,
      send: (partNumber) => this.#client.uploadPart(this.#key, uploadId, partNumber, body),
    });
  }

  /**
   * Complete the upload into the object at the path from the recorded parts and the `last` one
   * (the buffer or the tail, sent here). RGW completes an upload only with every part it holds:
   * parts stored after the recorded ones (stale ones, or a dead writer's past a gap) are completed
   * too, the last part after them, and then the object is copied onto itself without them.
   */
  async #completeUpload(
    uploadId: string,
    last: { size: number; send(partNumber: number): Promise<string> },
  ): Promise<void> {
    const s = this.#state;
    const recorded = s.parts.reduce((n, p) => n + p.size, 0);
    const extra = await this.#client.listParts(this.#key, uploadId, lastPart(s)) ?? [];
    const done: CompletedPart[] = [...s.parts, ...extra].map(({ partNumber, etag }) => ({
      partNumber,
      etag,
    }));
    if (last.size > 0) {
      const partNumber = done.at(-1)!.partNumber + 1;
      done.push({ partNumber, etag: await last.send(partNumber) });
    }
    await this.#client.completeMultipart(this.#key, uploadId, done);
    if (extra.length === 0) return;
    const skipped = extra.reduce((n, p) => n + p.size, 0);
    const copy = await this.#client.createMultipart(this.#key);
    try {
      const chunk = this.#options.multipartCopyChunkSize;
      const parts = await copyParts(this.#client, this.#key, copy, this.#key, recorded, chunk);
      if (last.size > 0) {
        const partNumber = parts.length + 1;
        const start = recorded + skipped;
        const range = { start, end: start + last.size - 1 };
        const etag = await this.#client.uploadPartCopy(
          this.#key,
          copy,
          partNumber,
          this.#key,
          range,
        );
        parts.push({ partNumber, etag, size: last.size });
      }
      await this.#client.completeMultipart(this.#key, copy, parts);
    } catch (error) {
      await this.#client.abortMultipart(this.#key, copy).catch(() => {});
      throw error;
    }
  }

  /**
   * Complete the upload into the object at the path and remove the state, under the lease; then
   * remove the tails and the lease (removing it releases it: a request that takes it next finds
   * no state).
   */
  async commit(): Promise<void> {
    this.#live();
    const s = this.#state;
    const sealedOnly = s.sealed > 0 && s.parts.length === 0 && s.tailSize === 0;
    await this.#exclusive(async () => {
      if (!sealedOnly && (this.#loaded || s.sealed > 0)) {
        await this.#prepare();
        await this.#complete();
      } else if (!sealedOnly) {
        await this.#completeInStore();
      }
      await this.#client.delete(this.#key + STATE_SUFFIX);
    }, { endsWriter: true });
    this.#finished = true;
    await dropWriter(this.#client, this.#key, { sealed: 0, parts: [], tailSize: 0 });
    this.#buffer = EMPTY;
    this.#spare = [];
  }

  /**
   * Write the object at the path from the parts and the tail object, the tail copied server-side
   * as the last part (a tail is under 5 MiB, which S3 takes as the last part): its bytes do not
   * pass through this process.
   */
  async #completeInStore(): Promise<void> {
    const { uploadId, parts, tail, tailSize } = this.#state;
    if (!uploadId || parts.length === 0) {
      // No part: the tail is all.
      if (tail && tailSize > 0) await this.#client.copy(tail, this.#key);
      else await this.#client.put(this.#key, EMPTY);
      if (uploadId) await this.#client.abortMultipart(this.#key, uploadId).catch(() => {});
      return;
    }
    const range = { start: 0, end: tailSize - 1 };
    await this.#completeUpload(uploadId, {
      size: tail ? tailSize : 0,
      send: (partNumber) =>
        this.#client.uploadPartCopy(this.#key, uploadId, partNumber, tail!, range),
    });
  }

  /**
   * Under the writer's lease (waiting up to {@link WRITE_LEASE_MS} for a write of another request
   * or process to end; then {@link WriterBusy}), so that a write under way cannot put back the
   * state of an upload just aborted: abort the upload, remove its tail, state and sealed bytes as
   * the bucket has them, then the lease.
   */
  async cancel(): Promise<void> {
    await this.#exclusive(async () => {
      const state = await readState(this.#client, this.#key) ?? this.#state;
      if (state.uploadId) {
        await this.#client.abortMultipart(this.#key, state.uploadId).catch(() => {});
      }
      const doomed = [this.#key + STATE_SUFFIX];
      if (state.tail && state.tail !== this.#key) doomed.push(state.tail);
      if (state.sealed > 0 || state.tail === this.#key) doomed.push(this.#key);
      await this.#client.deleteMany(doomed);
    }, { waitMs: WRITE_LEASE_MS, anyState: true });
    this.#finished = true;
    await dropWriter(this.#client, this.#key, { sealed: 0, parts: [], tailSize: 0 });
    this.#buffer = EMPTY;
    this.#spare = [];
  }

  close(): Promise<void> {
    this.#finished = true;
    this.#buffer = EMPTY;
    this.#spare = [];
    return Promise.resolve();
  }

  #live(): void {
    if (this.#finished) throw new Error(`${this.#key}: the writer is finished`);
  }
}
