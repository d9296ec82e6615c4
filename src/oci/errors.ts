/**
 * What the pure OCI code reports when input breaks the spec's grammar: an {@link OciError} with
 * the kind of thing that was wrong. It knows nothing of HTTP; the registry maps it to an error
 * code once (src/errors.ts `fromOciError`), or a service picks another answer where the spec
 * wants one (an invalid reference on a manifest GET is "unknown").
 *
 * @module
 */

/** What was invalid. */
export type OciErrorKind = "name" | "digest" | "tag" | "manifest";

/** Input that breaks the OCI grammar. */
export class OciError extends Error {
  /** What was invalid. */
  readonly kind: OciErrorKind;
  /** Structured detail (the offending value, cut short). */
  readonly detail: unknown;

  /** An error of `kind` with a message a client can show. */
  constructor(kind: OciErrorKind, message: string, detail?: unknown) {
    super(message);
    this.name = "OciError";
    this.kind = kind;
    this.detail = detail ?? null;
  }
}
