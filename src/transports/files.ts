/**
 * Atomic writes for file-based transports: a temporary file in the same folder tree, fsync,
 * rename. A stream that errors (a digest mismatch) leaves nothing behind.
 *
 * @module
 */

/** Write `data` to `path` via a temporary file in `tmpDir` (same file system); fsynced. */
export async function writeAtomic(
  path: string,
  data: Uint8Array | ReadableStream<Uint8Array>,
  tmpDir: string,
): Promise<void> {
  const tmp = `${tmpDir}/.tmp-${crypto.randomUUID()}`;
  try {
    const file = await Deno.open(tmp, { write: true, createNew: true });
    if (data instanceof Uint8Array) {
      try {
        let written = 0;
        while (written < data.byteLength) written += await file.write(data.subarray(written));
        await file.sync();
      } finally {
        file.close();
      }
    } else {
      await data.pipeTo(file.writable);
      const again = await Deno.open(tmp, { read: true });
      try {
        await again.sync();
      } finally {
        again.close();
      }
    }
    await Deno.rename(tmp, path);
  } catch (error) {
    await Deno.remove(tmp).catch(() => {});
    throw error;
  }
}

/** Whether a path exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}
