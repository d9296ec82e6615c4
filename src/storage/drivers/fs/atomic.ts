/**
 * Durable file primitives: atomic writes (temp file → fsync → rename → directory fsync) and the
 * small helpers the filesystem store needs around absence.
 *
 * @module
 */

/** Whether an error means "no such file or directory" (or a non-directory in the path). */
export function isNotFound(error: unknown): boolean {
  return error instanceof Deno.errors.NotFound ||
    (error instanceof Error && "code" in error && error.code === "ENOTDIR");
}

/** The parent folder of a path. */
export function dirname(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash <= 0 ? "/" : path.slice(0, slash);
}

/** fsync a directory so a rename or creation in it is durable. */
export async function syncDir(dir: string): Promise<void> {
  let handle: Deno.FsFile | undefined;
  try {
    handle = await Deno.open(dir, { read: true });
    await handle.sync();
  } catch (error) {
    if (!isNotFound(error)) throw error;
  } finally {
    handle?.close();
  }
}

/** A fresh unique name for a temporary file. */
export function tempName(tmpDir: string): string {
  return `${tmpDir}/${crypto.randomUUID()}.tmp`;
}

/**
 * Write `bytes` to `path` atomically and durably: temp file in `tmpDir`, fsync, rename over the
 * target, fsync the target's folder. Readers see the old content or the new, never a torn file.
 */
export async function writeFileAtomic(
  path: string,
  bytes: Uint8Array,
  tmpDir: string,
): Promise<void> {
  const tmp = tempName(tmpDir);
  const file = await openCreating(tmp, tmpDir);
  try {
    let written = 0;
    while (written < bytes.byteLength) written += await file.write(bytes.subarray(written));
    await file.sync();
  } catch (error) {
    file.close();
    await Deno.remove(tmp).catch(() => {});
    throw error;
  }
  file.close();
  await renameInto(tmp, path);
}

/** Rename `from` onto `to`, creating `to`'s folder if needed, then fsync that folder. */
export async function renameInto(from: string, to: string): Promise<void> {
  const dir = dirname(to);
  try {
    await Deno.rename(from, to);
  } catch (error) {
    if (!isNotFound(error)) {
      await Deno.remove(from).catch(() => {});
      throw error;
    }
    await Deno.mkdir(dir, { recursive: true });
    await Deno.rename(from, to);
  }
  await syncDir(dir);
}

/** Open a new file for writing, creating its folder when missing. */
async function openCreating(path: string, dir: string): Promise<Deno.FsFile> {
  const options = { write: true, createNew: true, mode: 0o644 } as const;
  try {
    return await Deno.open(path, options);
  } catch (error) {
    if (!isNotFound(error)) throw error;
    await Deno.mkdir(dir, { recursive: true });
    return await Deno.open(path, options);
  }
}

/** Read a small text file, or `undefined` when absent. */
export async function readTextOrUndefined(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/**
 * Read a tiny text file (a link) synchronously, or `undefined` when absent. For the request hot
 * path: a page-cached small read on the main thread costs less than an async read's thread-pool
 * round trip (figures: bench/measurements.md).
 */
export function readTextSyncOrUndefined(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/** `Deno.stat`, or `undefined` when absent. */
export async function statOrUndefined(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.stat(path);
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/** Names of a folder's entries, or `[]` when it is absent. */
export async function listDir(path: string): Promise<Deno.DirEntry[]> {
  const entries: Deno.DirEntry[] = [];
  try {
    for await (const entry of Deno.readDir(path)) entries.push(entry);
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
  return entries;
}

/** Remove a path recursively; `false` when it did not exist. */
export async function removeIfExists(path: string): Promise<boolean> {
  try {
    await Deno.remove(path, { recursive: true });
    return true;
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
}
