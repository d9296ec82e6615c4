/**
 * The OCI distribution error catalogue: every error code berth can answer with, its default HTTP
 * status and message, and {@link RegistryError}, the one exception handlers and services throw.
 *
 * @module
 */

/**
 * Every error code berth answers with: the OCI distribution spec's fourteen (the only codes a 4xx
 * JSON body may carry, spec "Error Codes"), plus `UNAVAILABLE` (503) and `UNKNOWN` (500).
 */
export const ERROR_CATALOGUE = {
  BLOB_UNKNOWN: { status: 404, message: "blob unknown to registry" },
  BLOB_UPLOAD_INVALID: { status: 400, message: "blob upload invalid" },
  BLOB_UPLOAD_UNKNOWN: { status: 404, message: "blob upload unknown to registry" },
  DIGEST_INVALID: { status: 400, message: "provided digest did not match uploaded content" },
  MANIFEST_BLOB_UNKNOWN: { status: 400, message: "manifest references a blob unknown to registry" },
  MANIFEST_INVALID: { status: 400, message: "manifest invalid" },
  MANIFEST_UNKNOWN: { status: 404, message: "manifest unknown to registry" },
  NAME_INVALID: { status: 400, message: "invalid repository name" },
  NAME_UNKNOWN: { status: 404, message: "repository name not known to registry" },
  SIZE_INVALID: { status: 400, message: "provided length did not match content length" },
  UNAUTHORIZED: { status: 401, message: "authentication required" },
  DENIED: { status: 403, message: "requested access to the resource is denied" },
  UNSUPPORTED: { status: 405, message: "the operation is unsupported" },
  TOOMANYREQUESTS: { status: 429, message: "too many requests" },
  UNAVAILABLE: { status: 503, message: "service unavailable" },
  UNKNOWN: { status: 500, message: "unknown error" },
} as const satisfies Record<string, { status: number; message: string }>;

/** A code from the {@link ERROR_CATALOGUE}. */
export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** Options of a {@link RegistryError} beyond its code. */
export interface RegistryErrorOptions {
  /** HTTP status, when it differs from the catalogue's (e.g. 413 for an oversized manifest). */
  status?: number;
  /** Message, when a more precise one than the catalogue's helps the user. */
  message?: string;
  /** Extra headers for the response (e.g. `Range`, `WWW-Authenticate`). */
  headers?: Record<string, string>;
}

/** The one error type of berth: it knows how to become its own response. */
export class RegistryError extends Error {
  /** The spec's error code. */
  readonly code: ErrorCode;
  /** The HTTP status of the response. */
  readonly status: number;
  /** Structured detail for the error body. */
  readonly detail: unknown;
  /** Extra response headers. */
  readonly headers: Record<string, string>;

  /** Build an error from its code, an optional detail and options. */
  constructor(code: ErrorCode, detail?: unknown, options: RegistryErrorOptions = {}) {
    const entry = ERROR_CATALOGUE[code];
    super(options.message ?? entry.message);
    this.name = "RegistryError";
    this.code = code;
    this.status = options.status ?? entry.status;
    this.detail = detail ?? null;
    this.headers = options.headers ?? {};
  }

  /** The spec's error body with this one error. */
  toBody(): { errors: { code: string; message: string; detail: unknown }[] } {
    return { errors: [{ code: this.code, message: this.message, detail: this.detail }] };
  }

  /** This error as an HTTP response (no body for HEAD requests). */
  toResponse(method = "GET"): Response {
    const headers = new Headers(this.headers);
    if (method === "HEAD") return new Response(null, { status: this.status, headers });
    headers.set("Content-Type", "application/json; charset=utf-8");
    return new Response(JSON.stringify(this.toBody()), { status: this.status, headers });
  }
}
