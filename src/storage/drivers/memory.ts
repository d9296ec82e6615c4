/**
 * The in-memory driver (distribution's `inmemory`): files in a map, folders derived from them.
 * For tests and throwaway registries; everything is gone when the process ends.
 *
 * @module
 */
import {
  checkPath,
  type FileInfo,
  type FileReader,
  type FileWriter,
  type ReadOptions,
  SizeMismatch,
  type StorageDriver,
  type WriteOptions,
  type WriterOptions,
} from "../driver.ts";
import { writeBatched } from "./batch_writer.ts";

/** Bytes handed out per pull of a reader. */
const READ_CHUNK = 1 << 20;

interface File {
  bytes: Uint8Array<ArrayBuffer>;
  size: number;
  modifiedAt: Date;
}

/** A {@link StorageDriver} in memory. */
export class MemoryDriver implements StorageDriver {
  /** Driver name, as distribution's. */
  readonly name = "inmemory";
  readonly #files = new Map<string, File>();
  /** Children of every folder that holds a file. */
  readonly #dirs = new Map<string, Set<string>>([["/", new Set()]]);

  close(): void {}

  getContent(path: string): Promise<Uint8Array<ArrayBuffer> | undefined> {
    return attempt(() => {
      const file = this.#files.get(checkPath(path));
      return file && file.bytes.slice(0, file.size);
    });
  }

  putContent(path: string, content: Uint8Array): Promise<void> {
    return attempt(() => {
      this.#put(checkPath(path), {
        bytes: content.slice(),
        size: content.byteLength,
        modifiedAt: new Date(),
      });
      return;
    });
  }

  reader(path: string, options: ReadOptions = {}): Promise<FileReader | undefined> {
    return attempt(() => {
      const file = this.#files.get(checkPath(path));
      if (!file) return undefined;
      // A snapshot: a later write to the file does not change what this reader gives.
      const start = Math.min(options.offset ?? 0, file.size);
      const end = Math.min(start + (options.length ?? file.size - start), file.size);
      const bytes = file.bytes.subarray(start, end);
      let at = 0;
      const signal = options.signal;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (signal?.aborted) return controller.error(signal.reason);
          if (at >= bytes.byteLength) return controller.close();
          const piece = bytes.subarray(at, Math.min(at + READ_CHUNK, bytes.byteLength));
          at += piece.byteLength;
          controller.enqueue(piece);
        },
      });
      return { size: file.size, body };
    });
  }

  writer(path: string, options: WriterOptions = {}): Promise<FileWriter | undefined> {
    return attempt(() => {
      checkPath(path);
      if (options.append) {
        if (!this.#files.has(path)) return undefined;
      } else {
        this.#put(path, { bytes: new Uint8Array(0), size: 0, modifiedAt: new Date() });
      }
      return new MemoryWriter(
        () => this.#files.get(path),
        () => this.#files.has(path) && this.#remove(path),
      );
    });
  }

  stat(path: string): Promise<FileInfo | undefined> {
    return attempt(() => {
      checkPath(path);
      const file = this.#files.get(path);
      if (file) {
        return { path, size: file.size, modifiedAt: file.modifiedAt, isDir: false };
      }
      if (this.#dirs.has(path)) {
        return { path, size: 0, modifiedAt: new Date(0), isDir: true };
      }
      return undefined;
    });
  }

  list(path: string): Promise<string[] | undefined> {
    return attempt(() => {
      const children = this.#dirs.get(checkPath(path));
      return children && [...children];
    });
  }

  move(from: string, to: string): Promise<boolean> {
    return attempt(() => {
      const file = this.#files.get(checkPath(from));
      checkPath(to);
      if (!file) return false;
      this.#remove(from);
      this.#put(to, file);
      return true;
    });
  }

  delete(path: string): Promise<boolean> {
    return attempt(() => {
      checkPath(path);
      if (this.#files.has(path)) {
        this.#remove(path);
        return true;
      }
      if (path === "/" || !this.#dirs.has(path)) return false;
      for (const file of this.#filesUnder(path)) this.#remove(file);
      return true;
    });
  }

  /** Every file under folder `dir`, through the folder tree (not a scan of every file). */
  #filesUnder(dir: string): string[] {
    const files: string[] = [];
    const pending = [dir];
    while (pending.length > 0) {
      const folder = pending.pop()!;
      for (const name of this.#dirs.get(folder) ?? []) {
        const child = folder === "/" ? `/${name}` : `${folder}/${name}`;
        if (this.#files.has(child)) files.push(child);
        else pending.push(child);
      }
    }
    return files;
  }

  #put(path: string, file: File): void {
    if (this.#dirs.has(path)) throw new Error(`${path} is a folder`);
    this.#files.set(path, file);
    let child = path;
    while (child !== "/") {
      const parent = parentOf(child);
      if (this.#files.has(parent)) throw new Error(`${parent} is a file`);
      const children = this.#dirs.get(parent);
      const name = child.slice(child.lastIndexOf("/") + 1);
      if (children) {
        children.add(name);
        break;
      }
      this.#dirs.set(parent, new Set([name]));
      child = parent;
    }
  }

  /** Remove a file, and the folders it leaves empty. */
  #remove(path: string): void {
    this.#files.delete(path);
    let child = path;
    while (child !== "/") {
      const parent = parentOf(child);
      const children = this.#dirs.get(parent);
      children?.delete(child.slice(child.lastIndexOf("/") + 1));
      if (parent === "/" || (children && children.size > 0)) break;
      this.#dirs.delete(parent);
      child = parent;
    }
  }
}

/** Appends to a file of the map, in place. */
class MemoryWriter implements FileWriter {
  #finished = false;

  /** A writer of the file `get` finds; `remove` deletes it. */
  constructor(readonly get: () => File | undefined, readonly remove: () => void) {}

  get size(): number {
    return this.get()?.size ?? 0;
  }

  async write(body: ReadableStream<Uint8Array>, options: WriteOptions = {}): Promise<number> {
    const file = this.#file();
    const start = file.size;
    const sink = {
      write(bytes: Uint8Array): Promise<number> {
        if (file.size + bytes.byteLength > file.bytes.byteLength) {
          const grown = new Uint8Array(Math.max(file.size + bytes.byteLength, file.size * 2));
          grown.set(file.bytes.subarray(0, file.size));
          file.bytes = grown;
        }
        file.bytes.set(bytes, file.size);
        file.size += bytes.byteLength;
        file.modifiedAt = new Date();
        return Promise.resolve(bytes.byteLength);
      },
    };
    try {
      const written = await writeBatched(body, sink, options);
      if (options.expectedLength !== undefined && written !== options.expectedLength) {
        throw new SizeMismatch(options.expectedLength, written);
      }
      return file.size;
    } catch (error) {
      if (!options.keepPartial?.(error)) file.size = start;
      throw error;
    }
  }

  readBack(offset = 0): Promise<ReadableStream<Uint8Array>> {
    const file = this.#file();
    const bytes = file.bytes.slice(Math.min(offset, file.size), file.size);
    return Promise.resolve(
      new ReadableStream({
        start(controller) {
          if (bytes.byteLength > 0) controller.enqueue(bytes);
          controller.close();
        },
      }),
    );
  }

  commit(): Promise<void> {
    const file = this.#file();
    file.bytes = file.bytes.slice(0, file.size);
    this.#finished = true;
    return Promise.resolve();
  }

  cancel(): Promise<void> {
    this.#finished = true;
    this.remove();
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.#finished = true;
    return Promise.resolve();
  }

  #file(): File {
    const file = this.get();
    if (this.#finished || !file) throw new Error("the writer is finished");
    return file;
  }
}

function parentOf(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash <= 0 ? "/" : path.slice(0, slash);
}

/** Run `fn`, its throw becoming a rejection (drivers fail through their promise). */
function attempt<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (error) {
    return Promise.reject(error);
  }
}
