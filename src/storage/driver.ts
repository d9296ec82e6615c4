/**
 * The storage driver: the small interface every backend (filesystem, memory, S3) implements, on
 * which `src/storage/layout/` draws distribution's tree. A driver knows paths and bytes, nothing
 * of registries: no digests, tags or repositories.
 *
 * Paths are absolute, `/`-separated, without empty segments or segments starting with `.`, made
 * of `[A-Za-z0-9._:+=@-]` and `/` (the layout builds them from validated names, tags, digests);
 * a driver refuses any other path with {@link InvalidPath}. A path names a file (bytes) or a
 * directory (a prefix of other paths); directories exist only while they hold a file
 * (object stores have none), and writing a file creates its parents.
 *
 * Absence is `undefined` (or `false`); only real I/O failures throw.
 *
 * Concurrency: every single-file operation is atomic as seen by readers in any process sharing
 * the storage: a reader sees a file's old content or its new content, never a mix, and a file
 * appears whole or not at all. Between two writers of one path the last to finish wins.
 * Operations on different paths are unordered unless the caller awaits one before the other;
 * a write that has resolved is visible to every process (read-after-write), so the layout can
 * publish in order (blob, then link, then tag). Listings (`list`, `walk`) may miss or include
 * entries changed while they run.
 *
 * Durability: a resolved `putContent`, `move` or writer `commit` survives a crash (fs: fsync of
 * the file and its directory).
 *
 * @module
 */

/** What {@link StorageDriver.stat} tells about a path. */
export interface FileInfo {
  /** The path asked about. */
  path: string;
  /** Bytes of a file; 0 for a directory. */
  size: number;
  /** Last change of a file (its bytes were written), or of a directory when the driver knows. */
  modifiedAt: Date;
  /** Whether the path is a directory (a prefix of files) rather than a file. */
  isDir: boolean;
}

/** A byte range to read: from `offset`, `length` bytes (to the end when absent). */
export interface ReadOptions {
  /** First byte to read (default 0); past the end gives an empty body. */
  offset?: number;
  /** Number of bytes to read (default: to the end). */
  length?: number;
  /** Aborts the read (the body errors and the driver releases what it holds). */
  signal?: AbortSignal;
}

/** An opened file: its whole size and a stream of the bytes asked for. */
export interface FileReader {
  /** Size of the whole file (not of the range). */
  size: number;
  /** The requested bytes; cancel it to release the file early. */
  body: ReadableStream<Uint8Array>;
}

/** Called with each batch of bytes a writer stores, in order (to hash while writing); the view is valid only during the call. */
export type ByteObserver = (bytes: Uint8Array) => void;

/** Options of {@link FileWriter.write}. */
export interface WriteOptions {
  /** Sees every byte written by this call, in order, before it is stored. */
  observe?: ByteObserver;
  /**
   * Exact number of bytes the body must hold: more or fewer fails with {@link SizeMismatch}
   * (bytes past the limit are never stored, never observed).
   */
  expectedLength?: number;
  /** Aborts the write; it then fails with the signal's reason. */
  signal?: AbortSignal;
  /**
   * Asked when the write fails: `true` keeps the bytes that reached storage before the failure
   * (the writer's `size` then tells how many; observed bytes may be more), `false` (the default)
   * cuts the file back to where this write began. Used at the shutdown deadline, where a client
   * resumes from the prefix that reached the disk.
   */
  keepPartial?: (error: unknown) => boolean;
}

/**
 * A resumable writer of one file (an upload session's data). Until {@link commit}, what
 * `getContent`, `reader`, `stat` and `list` see at the path is unspecified (fs: the bytes so far,
 * as distribution's filesystem driver; object stores: nothing); the bytes so far are read back,
 * from any process, through a resumed writer's {@link readBack}.
 *
 * All its state lives in the storage (an object store keeps its multipart upload id and part
 * list in the bucket), so after {@link close}, or a crash of the process, another process
 * resumes it with `writer(path, { append: true })` and sees the same `size` (a crash may lose the
 * write that was in flight, never earlier ones). One writer per path at a time: the caller
 * serialises writes (the layout's upload lock); a write racing another on the same path from
 * another process fails with {@link WriterBusy} (S3: under a lease in the bucket) or may be lost
 * (fs), but never corrupts bytes already stored.
 */
export interface FileWriter {
  /** Bytes stored so far (committed writes). */
  readonly size: number;
  /**
   * Append `body`; resolves to the new size when every byte is stored. On failure the file is
   * cut back to its size before the call (see {@link WriteOptions.keepPartial}) and the error
   * (the body's own error, {@link SizeMismatch}, or the abort reason) is thrown.
   */
  write(body: ReadableStream<Uint8Array>, options?: WriteOptions): Promise<number>;
  /** The bytes stored so far, from `offset` (to re-hash a session after a restart). */
  readBack(offset?: number): Promise<ReadableStream<Uint8Array>>;
  /**
   * Make the bytes durable and the file visible at its path (atomically: whole or not at all);
   * the writer is finished. Committing an empty writer makes an empty file.
   */
  commit(): Promise<void>;
  /** Discard every byte written; the writer is finished and the path has no pending writer. */
  cancel(): Promise<void>;
  /** Release what the writer holds in this process; its bytes stay for a later resume. */
  close(): Promise<void>;
}

/** Options of {@link StorageDriver.writer}. */
export interface WriterOptions {
  /**
   * Resume the pending writer of this path (`undefined` when there is none) instead of starting
   * a new, empty one (which discards any pending bytes).
   */
  append?: boolean;
}

/** Options of {@link StorageDriver.redirectUrl}. */
export interface RedirectOptions {
  /** The HTTP method the URL will be used with (`GET` or `HEAD`). */
  method: "GET" | "HEAD";
  /** How long the URL stays valid, in seconds. */
  expiresIn: number;
}

/** Options of {@link StorageDriver.listSorted}. */
export interface ListOptions {
  /**
   * Names (sorted) likely to be all of the folder's sub-folders. A driver that can tell cheaply
   * that they are (fs: the folder's link count is 2 + its sub-folders) may answer with the
   * sub-folders found among them only, files left out: for walks of folders, such as the catalog's
   * walk of repository folders, which most often hold only their marker folders.
   */
  likelyFolders?: readonly string[];
}

/** The storage driver interface. */
export interface StorageDriver {
  /** A short name for logs and health (`filesystem`, `inmemory`, `s3aws`). */
  readonly name: string;
  /**
   * `true` when {@link reader} of a path with a pending writer shows the bytes written so far
   * (fs): a blob being filled can then be read while it is written.
   */
  readonly readsPendingWrites?: boolean;

  /** The whole content of a small file (links, manifests), or `undefined` when absent. */
  getContent(path: string): Promise<Uint8Array<ArrayBuffer> | undefined>;
  /** Replace a file's content atomically and durably (parents are created). */
  putContent(path: string, content: Uint8Array): Promise<void>;
  /** Open a file to stream it, whole or a range, or `undefined` when absent. */
  reader(path: string, options?: ReadOptions): Promise<FileReader | undefined>;
  /** A writer of the file at `path` (see {@link FileWriter}); `undefined` only when resuming finds none. */
  writer(path: string, options?: WriterOptions): Promise<FileWriter | undefined>;
  /** What is at `path`, or `undefined`. */
  stat(path: string): Promise<FileInfo | undefined>;
  /**
   * The names (last segment) of the direct children of directory `path`, files and directories,
   * in no set order; `undefined` when `path` is not a directory.
   */
  list(path: string): Promise<string[] | undefined>;
  /**
   * As {@link list}, sorted in code-unit order, as a read-only array the driver may hand out
   * again while the directory is unchanged (fs: validated by its `stat`). Without it the layout
   * sorts `list`. With `options.likelyFolders`, see {@link ListOptions}.
   */
  listSorted?(
    path: string,
    options?: ListOptions,
  ): readonly string[] | undefined | Promise<readonly string[] | undefined>;
  /**
   * Move a file onto `to` (replacing what is there), atomically for readers of `to`; `false`
   * when `from` is absent. Object stores copy then delete: a crash between leaves both.
   */
  move(from: string, to: string): Promise<boolean>;
  /** Remove a file, or a directory with everything under it; `false` when nothing was there. */
  delete(path: string): Promise<boolean>;
  /**
   * A URL a client may fetch the file from directly (object stores), or `undefined` when the
   * driver cannot give one (then the registry streams the file itself).
   */
  redirectUrl?(path: string, options: RedirectOptions): Promise<string | undefined>;
  /**
   * Every file under `path` (depth first, in no set order), with its info; directories are not
   * yielded. Drivers that can list deep cheaply (object stores) implement it; the layout falls
   * back to {@link walkByList}.
   */
  walk?(path: string): AsyncIterable<FileInfo>;
  /**
   * Whether the storage answers and, with `write`, takes a write (a probe removed at once):
   * `"ok"` or what is wrong. Drivers without it are probed by the layout (`stat("/")`, a
   * `putContent` in its temporary folder).
   */
  health?(write: boolean): Promise<string>;
  /** Release what the driver holds open (it may be used again after). */
  close(): void;
}

/** Thrown by a writer when a body's length differs from the one expected. */
export class SizeMismatch extends Error {
  /** Build the error from the expected and received lengths. */
  constructor(readonly expected: number, readonly received: number) {
    super(`expected ${expected} bytes, received ${received}`);
    this.name = "SizeMismatch";
  }
}

/**
 * Thrown by a writer of shared storage when another process is writing the same file (or wrote it
 * since this writer was opened): the write did nothing. The caller answers as for a chunk out of
 * order.
 */
export class WriterBusy extends Error {
  /** Name the file. */
  constructor(readonly path: string) {
    super(`${path}: another writer is at work on this file, or it changed since it was opened`);
    this.name = "WriterBusy";
  }
}

/** Thrown by a driver given a path outside the allowed shape. */
export class InvalidPath extends Error {
  /** Name the refused path. */
  constructor(readonly path: string) {
    super(`invalid storage path ${JSON.stringify(path.slice(0, 200))}`);
    this.name = "InvalidPath";
  }
}

/** Segments of allowed characters, none starting with `.` (so never `.` or `..`). */
const PATH = /^(?:\/[A-Za-z0-9_:+=@-][A-Za-z0-9._:+=@-]*)+$/;

/** Throw {@link InvalidPath} unless `path` is a valid driver path (`/` itself is allowed). */
export function checkPath(path: string): string {
  if (path !== "/" && !PATH.test(path)) throw new InvalidPath(path);
  return path;
}

/** Every file under `path`, walking with `list` and `stat` (for drivers without `walk`). */
export async function* walkByList(driver: StorageDriver, path: string): AsyncIterable<FileInfo> {
  const names = await driver.list(path);
  if (!names) return;
  for (const name of names) {
    const child = path === "/" ? `/${name}` : `${path}/${name}`;
    const info = await driver.stat(child);
    if (!info) continue;
    if (info.isDir) yield* walkByList(driver, child);
    else yield info;
  }
}
