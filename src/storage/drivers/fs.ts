/**
 * The filesystem driver: driver path `/a/b` is the file `<root>/a/b`, as distribution's
 * `filesystem` driver, so a data directory is shared with it as it is. Writes are atomic and
 * durable (temp file in the root → fsync → rename → folder fsync); upload writers append to their
 * file in place and hash while writing.
 *
 * Two optional caches keep the request path fast, both checked against the disk so they stay
 * right when other processes share the directory (no single-owner assumption):
 * - `contentCache`: small files (tag links) kept in memory, revalidated by one `stat`, or not at
 *   all while the change epoch (a file every berth process appends a byte to after changing such
 *   a file) is unchanged and the entry was checked less than a second ago; see `LinkCache`,
 *   `TagEpoch`. Other programs' changes (distribution) are seen within a second.
 * - `listCache`: folder listings (tags) kept while the folder's `stat` is unchanged; folders
 *   read through `listSorted` (the repository tree, up to 16,384 folders) are kept the same way.
 *
 * @module
 */
import { BufferPool } from "../../bytes.ts";
import {
  checkPath,
  type FileInfo,
  type FileReader,
  type FileWriter,
  type ListOptions,
  type ReadOptions,
  SizeMismatch,
  type StorageDriver,
  type WriteOptions,
  type WriterOptions,
} from "../driver.ts";
import { WRITE_BATCH, writeBatched } from "./batch_writer.ts";
import { dirname, isNotFound, removeIfExists, renameInto, writeFileAtomic } from "./fs/atomic.ts";
import { FileStream } from "./fs/file_stream.ts";
import { LinkCache } from "./fs/link_cache.ts";
import { ListingCache, statSyncOrUndefined } from "./fs/listing_cache.ts";
import { type ReadCount, TagEpoch } from "./fs/tag_epoch.ts";

/** Repository-tree folders kept (a catalog walk of this many repositories reads none again). */
const FOLDERS_KEPT = 16_384;
/** Names kept over those folders (about 40 bytes each). */
const FOLDER_NAMES_KEPT = 262_144;

/** Folders with fewer links than this (sub-folders + 2) are listed synchronously. */
const SMALL_FOLDER = 64;

/** Options of {@link FsDriver}. */
export interface FsDriverOptions {
  /** Driver path of the folder for temporary files (default `/_tmp`); on the root's filesystem. */
  tmp?: string;
  /**
   * Small files to keep in memory (see the module note), the driver path of the epoch file, and
   * the read count of berth's HTTP server (see `TagEpoch`).
   */
  contentCache?: { match: (path: string) => boolean; epoch: string; arrivals?: ReadCount };
  /** Folders whose listing is kept in memory while unchanged. */
  listCache?: (path: string) => boolean;
}

/** A {@link StorageDriver} over a local directory. */
export class FsDriver implements StorageDriver {
  /** Driver name, as distribution's. */
  readonly name = "filesystem";
  readonly readsPendingWrites = true;
  /** The local directory of driver path `/`. */
  readonly root: string;
  readonly #tmp: string;
  readonly #cached: ((path: string) => boolean) | undefined;
  readonly #epoch: TagEpoch | undefined;
  readonly #links = new LinkCache();
  /**
   * Upload writers' batch buffers, one body's pair kept for the next: with fresh ones each 128 MiB
   * PATCH of a chunked push took 15–20 ms longer (bench/README.md, session 13).
   */
  readonly #buffers = new BufferPool(WRITE_BATCH, 2);
  readonly #listed: ((path: string) => boolean) | undefined;
  readonly #listings = new ListingCache();
  /**
   * Folders of the repository tree, for {@link listSorted}: the namespaces and each repository's
   * own folder (one `stat` then tells a catalog page it is unchanged, where reading it costs an
   * open, a read and a close: 13 against 46 µs under load).
   */
  readonly #folders = new ListingCache({ maxEntries: FOLDERS_KEPT, maxNames: FOLDER_NAMES_KEPT });
  /** The same for listings asked with `likelyFolders` (they may leave files out: kept apart). */
  readonly #probed = new ListingCache({ maxEntries: FOLDERS_KEPT, maxNames: FOLDER_NAMES_KEPT });

  /** A driver rooted at local directory `root` (distribution's `rootdirectory`). */
  constructor(root: string, options: FsDriverOptions = {}) {
    this.root = root.length > 1 ? root.replace(/\/+$/, "") : root;
    this.#tmp = this.localPath(options.tmp ?? "/_tmp");
    this.#cached = options.contentCache?.match;
    const epoch = options.contentCache?.epoch;
    this.#epoch = epoch === undefined
      ? undefined
      : new TagEpoch(this.localPath(epoch), options.contentCache?.arrivals);
    this.#listed = options.listCache;
  }

  /** The local file of a driver path (for fs-only helpers such as the catalog journal). */
  localPath(path: string): string {
    checkPath(path);
    return path === "/" ? this.root : `${this.root}${path}`;
  }

  /** The local temporary folder. */
  get tmpDir(): string {
    return this.#tmp;
  }

  close(): void {
    this.#epoch?.close();
  }

  /** A file's content; for `contentCache` paths the same array while unchanged (read-only). */
  getContent(path: string): Promise<Uint8Array<ArrayBuffer> | undefined> {
    try {
      if (!this.#cached?.(path)) return readOrUndefined(this.localPath(path));
      // From memory when the epoch allows (only checked paths are ever kept), else synchronously:
      // a page-cached link is cheaper to read than an async read's round trip.
      const epoch = this.#epoch?.current();
      const kept = this.#links.peekBytes(this.root + path, epoch);
      if (kept) return Promise.resolve(kept);
      return Promise.resolve(this.#links.readBytes(this.localPath(path), epoch));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async putContent(path: string, content: Uint8Array): Promise<void> {
    const local = this.localPath(path);
    await writeFileAtomic(local, content, this.#tmp);
    await this.#changed(path, local);
  }

  async reader(path: string, options: ReadOptions = {}): Promise<FileReader | undefined> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(this.localPath(path), { read: true });
    } catch (error) {
      if (isNotFound(error) || isDirectory(error)) return undefined;
      throw error;
    }
    try {
      const info = await file.stat();
      if (!info.isFile) {
        file.close();
        return undefined;
      }
      const size = info.size;
      const start = Math.min(options.offset ?? 0, size);
      const length = Math.min(options.length ?? size - start, size - start);
      if (start > 0) await file.seek(start, Deno.SeekMode.Start);
      return { size, body: new FileStream(file, length, options.signal) };
    } catch (error) {
      file.close();
      throw error;
    }
  }

  async writer(path: string, options: WriterOptions = {}): Promise<FileWriter | undefined> {
    const local = this.localPath(path);
    let file: Deno.FsFile;
    if (options.append) {
      try {
        file = await Deno.open(local, { read: true, write: true });
      } catch (error) {
        if (isNotFound(error) || isDirectory(error)) return undefined;
        // A read-only data directory still tells a session's size; a write then fails.
        if (!(error instanceof Deno.errors.PermissionDenied || isReadOnly(error))) throw error;
        file = await Deno.open(local, { read: true });
      }
    } else {
      const flags = { read: true, write: true, create: true, truncate: true, mode: 0o644 };
      try {
        file = await Deno.open(local, flags);
      } catch (error) {
        if (!isNotFound(error)) throw error;
        await Deno.mkdir(dirname(local), { recursive: true });
        file = await Deno.open(local, flags);
      }
    }
    try {
      const info = await file.stat();
      if (!info.isFile) throw new Error(`${path} is not a file`);
      return new FsWriter(local, file, info.size, this.#buffers);
    } catch (error) {
      file.close();
      throw error;
    }
  }

  /**
   * Synchronous inside: a `stat` of a page-cached inode costs a few microseconds, where an
   * asynchronous one is a round trip through the runtime's thread pool (most of a blob HEAD).
   */
  stat(path: string): Promise<FileInfo | undefined> {
    try {
      return Promise.resolve(this.statSync(path));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** {@link stat}, synchronously (cheap for a cached inode; for loops of many lookups). */
  statSync(path: string): FileInfo | undefined {
    const info = statSyncOrUndefined(this.localPath(path));
    return info && infoOf(path, info);
  }

  list(path: string): Promise<string[] | undefined> {
    try {
      const local = this.localPath(path);
      if (this.#listed?.(path)) return this.#listings.list(local, () => listNames(local));
      return listNames(local).catch((error) => {
        if (isNotFound(error)) return undefined;
        throw error;
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** {@inheritDoc StorageDriver.listSorted} */
  listSorted(
    path: string,
    options: ListOptions = {},
  ): readonly string[] | undefined | Promise<readonly string[] | undefined> {
    try {
      const local = this.localPath(path);
      const likely = options.likelyFolders;
      const cache = this.#listed?.(path) ? this.#listings : likely ? this.#probed : this.#folders;
      // A folder's link count is 2 + its sub-folders (ext4, xfs, ...): a small folder is read
      // synchronously, cheaper than a round trip to the thread pool; a large one is not, so the
      // server keeps answering while the system reads it (a folder of 100,000 names, loaded
      // machine: C `readdir` 27–30 ms CPU, `Deno.readDirSync` 580–930 ms, `Deno.readDir` 240–980
      // ms, the runtime's conversion of the entries).
      // With likely sub-folders (a repository's marker folders) and a link count that says the
      // folder has no more sub-folders than those: a `stat` of each until they are all found, in
      // place of reading the folder (a walk of 10,000 repository folders, loaded machine: ~5 µs
      // a `stat` against ~25 µs a `readDirSync`, which also leaves entry objects to collect).
      return cache.sorted(local, (info) => {
        const links = info.nlink ?? 0;
        const found = likely && links >= 2 && links - 2 <= likely.length
          ? foldersAmong(local, likely, links - 2)
          : undefined;
        if (found) return found;
        return links > 1 && links < SMALL_FOLDER ? listNamesSync(local) : listNames(local);
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async move(from: string, to: string): Promise<boolean> {
    const source = this.localPath(from);
    const target = this.localPath(to);
    try {
      await renameInto(source, target);
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
    await this.#changed(to, target);
    return true;
  }

  async delete(path: string): Promise<boolean> {
    const local = this.localPath(path);
    const removed = await removeIfExists(local);
    if (removed) await this.#changed(path, local, true);
    return removed;
  }

  /**
   * A file (or, when `folder`, everything under a removed path) that may be cached changed: drop
   * it here, and tell other processes.
   */
  async #changed(path: string, local: string, folder = false): Promise<void> {
    if (!this.#cached) return;
    if (this.#cached(path)) {
      this.#links.forget(local);
      await this.#epoch?.bump();
    } else if (folder && this.#links.forgetUnder(`${local}/`)) {
      await this.#epoch?.bump();
    }
  }
}

/**
 * An upload writer: the file at its path, appended in place; the commit's `fsync` makes it durable.
 * (Session 7 measured a background `fdatasync` every 64 MiB while the body arrived: every 1 GiB
 * push was slower with it, 568 vs 647 MB/s monolithic: bench/README.md.)
 */
class FsWriter implements FileWriter {
  #size: number;
  #file: Deno.FsFile | undefined;

  readonly #buffers: BufferPool;

  constructor(readonly local: string, file: Deno.FsFile, size: number, buffers: BufferPool) {
    this.#file = file;
    this.#size = size;
    this.#buffers = buffers;
  }

  get size(): number {
    return this.#size;
  }

  async write(body: ReadableStream<Uint8Array>, options: WriteOptions = {}): Promise<number> {
    const file = this.#open();
    const start = this.#size;
    try {
      await file.seek(start, Deno.SeekMode.Start);
      const written = await writeBatched(body, file, options, this.#buffers);
      if (options.expectedLength !== undefined && written !== options.expectedLength) {
        throw new SizeMismatch(options.expectedLength, written);
      }
      this.#size = start + written;
      return this.#size;
    } catch (error) {
      if (options.keepPartial?.(error)) {
        this.#size = (await file.stat().catch(() => undefined))?.size ?? start;
      } else {
        await file.truncate(start).catch(() => {});
      }
      throw error;
    }
  }

  async readBack(offset = 0): Promise<ReadableStream<Uint8Array>> {
    const file = await Deno.open(this.local, { read: true });
    try {
      const length = Math.max(0, this.#size - offset);
      if (offset > 0) await file.seek(offset, Deno.SeekMode.Start);
      return new FileStream(file, length);
    } catch (error) {
      file.close();
      throw error;
    }
  }

  async commit(): Promise<void> {
    const file = this.#open();
    try {
      await file.sync();
    } finally {
      this.#release();
    }
  }

  async cancel(): Promise<void> {
    this.#release();
    await Deno.remove(this.local).catch((error) => {
      if (!isNotFound(error)) throw error;
    });
  }

  close(): Promise<void> {
    this.#release();
    return Promise.resolve();
  }

  #open(): Deno.FsFile {
    if (!this.#file) throw new Error("the writer is finished");
    return this.#file;
  }

  #release(): void {
    this.#file?.close();
    this.#file = undefined;
  }
}

function infoOf(path: string, info: Deno.FileInfo): FileInfo {
  return {
    path,
    size: info.isFile ? info.size : 0,
    modifiedAt: info.mtime ?? new Date(0),
    isDir: info.isDirectory,
  };
}

async function readOrUndefined(local: string): Promise<Uint8Array<ArrayBuffer> | undefined> {
  try {
    return await Deno.readFile(local);
  } catch (error) {
    if (isNotFound(error) || isDirectory(error)) return undefined;
    throw error;
  }
}

/** `count` sub-folders of `local` among `names` (in their order), or `undefined` when not all found. */
function foldersAmong(
  local: string,
  names: readonly string[],
  count: number,
): string[] | undefined {
  const found: string[] = [];
  for (const name of names) {
    if (found.length === count) break;
    if (statSyncOrUndefined(`${local}/${name}`)?.isDirectory) found.push(name);
  }
  return found.length === count ? found : undefined;
}

function listNamesSync(local: string): string[] {
  const names: string[] = [];
  for (const entry of Deno.readDirSync(local)) names.push(entry.name);
  return names;
}

async function listNames(local: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(local)) names.push(entry.name);
  return names;
}

/** Whether an error means the filesystem is mounted read-only. */
function isReadOnly(error: unknown): boolean {
  return error instanceof Error && "code" in error && error.code === "EROFS";
}

/** Whether an error means the path is a folder where a file was expected. */
function isDirectory(error: unknown): boolean {
  return error instanceof Deno.errors.IsADirectory ||
    (error instanceof Error && "code" in error && error.code === "EISDIR");
}
