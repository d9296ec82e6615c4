/**
 * A temporary folder for one test, removed afterwards whatever happens.
 *
 * @module
 */

/** Run `body` with a fresh temporary folder (named with `prefix`), then remove it. */
export async function withTempDir(
  prefix: string,
  body: (dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
