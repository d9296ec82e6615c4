/**
 * {@link ClientError}: why talking to a registry or reading an image failed, in one line a user
 * can act on (auth refused, not found, digest mismatch, unreachable, ...).
 *
 * @module
 */

/** What kind of failure a {@link ClientError} is. */
export type ClientErrorKind =
  | "auth"
  | "denied"
  | "not-found"
  | "digest-mismatch"
  | "unreachable"
  | "protocol"
  | "unsupported"
  | "invalid"
  | "aborted"
  | "usage";

/** A failure of the client, the transports or the copy engine; its message is one line. */
export class ClientError extends Error {
  /** The kind of failure. */
  readonly kind: ClientErrorKind;
  /** The HTTP status that caused it, when one did. */
  readonly status: number | undefined;

  /** Build an error of `kind` with a one-line message. */
  constructor(
    kind: ClientErrorKind,
    message: string,
    options: { status?: number; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ClientError";
    this.kind = kind;
    this.status = options.status;
  }
}

/** A one-line message for any thrown value (no stack). */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) {
    let message = error.message.split("\n")[0] ?? "";
    // fetch's "fetch failed" hides the reason (refused, TLS, DNS) in its cause.
    if (message === "fetch failed" && error.cause instanceof Error) {
      message = errorMessage(error.cause);
    }
    return message || error.name;
  }
  return String(error);
}
