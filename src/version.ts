/**
 * The version of berth (bumped on release; shown by `berth version`).
 *
 * @module
 */

/** berth's version. */
export const VERSION = "0.1.0";

/**
 * The Deno release berth is tested and shipped with (README, `.ci/run`, the image). The pin dates
 * from `Deno.serve` freezing on chunked request bodies in 2.8.3 to 2.9.x (docs/chunked_uploads.md).
 */
export const DENO_VERSION = "2.8.2";
