/**
 * The error a storage backend throws when it cannot be reached (after its own retries): the
 * registry answers 503 `UNAVAILABLE` instead of a 500.
 *
 * @module
 */

/** The storage backend did not answer, or answered with a server error, after retries. */
export class StorageUnavailable extends Error {
  /** Build the error from what went wrong. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StorageUnavailable";
  }
}
