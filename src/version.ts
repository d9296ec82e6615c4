/**
 * The version of berth (bumped on release; shown by `berth version`).
 *
 * @module
 */

/** berth's version. */
export const VERSION = "0.1.0";
