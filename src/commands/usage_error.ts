/**
 * {@link UsageError}: a command line that cannot be run as given (exit code 2).
 *
 * @module
 */

/** Bad arguments: the CLI prints the message and the command's usage, and exits 2. */
export class UsageError extends Error {
  /** Build the error. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}
