/**
 * The error catalogue: every error berth answers with, its HTTP status, the spec's code its body
 * carries and its default message, and {@link RegistryError}, the one exception handlers and
 * services throw. A status is never chosen at a call site: a case with a status of its own gets
 * an entry here.
 *
 * @module
 */
import { OciError, type OciErrorKind } from "./oci/errors.ts";
import { StorageUnavailable } from "./storage/unavailable.ts";

/**
 * Codes an error body may carry: the OCI distribution spec's fourteen (the only codes a 4xx JSON
 * body may carry, spec "Error Codes"), plus `UNAVAILABLE` (503) and `UNKNOWN` (500).
 */
export type SpecCode =
  | "BLOB_UNKNOWN"
  | "BLOB_UPLOAD_INVALID"
  | "BLOB_UPLOAD_UNKNOWN"
  | "DIGEST_INVALID"
  | "MANIFEST_BLOB_UNKNOWN"
  | "MANIFEST_INVALID"
  | "MANIFEST_UNKNOWN"
  | "NAME_INVALID"
  | "NAME_UNKNOWN"
  | "SIZE_INVALID"
  | "UNAUTHORIZED"
  | "DENIED"
  | "UNSUPPORTED"
  | "TOOMANYREQUESTS"
  | "UNAVAILABLE"
  | "UNKNOWN";

/** One entry of the catalogue. */
interface Entry {
  /** The code of the error body. */
  code: SpecCode;
  /** The HTTP status. */
  status: number;
  /** The default message. */
  message: string;
}

/**
 * Every error berth answers with. The spec's codes are entries of their own; the other entries
 * are cases that need another status and answer with the spec code closest to them.
 */
export const ERROR_CATALOGUE = {
  BLOB_UNKNOWN: { code: "BLOB_UNKNOWN", status: 404, message: "blob unknown to registry" },
  BLOB_UPLOAD_INVALID: { code: "BLOB_UPLOAD_INVALID", status: 400, message: "blob upload invalid" },
  BLOB_UPLOAD_UNKNOWN: {
    code: "BLOB_UPLOAD_UNKNOWN",
    status: 404,
    message: "blob upload unknown to registry",
  },
  DIGEST_INVALID: {
    code: "DIGEST_INVALID",
    status: 400,
    message: "provided digest did not match uploaded content",
  },
  MANIFEST_BLOB_UNKNOWN: {
    code: "MANIFEST_BLOB_UNKNOWN",
    status: 400,
    message: "manifest references a blob unknown to registry",
  },
  MANIFEST_INVALID: { code: "MANIFEST_INVALID", status: 400, message: "manifest invalid" },
  MANIFEST_UNKNOWN: {
    code: "MANIFEST_UNKNOWN",
    status: 404,
    message: "manifest unknown to registry",
  },
  NAME_INVALID: { code: "NAME_INVALID", status: 400, message: "invalid repository name" },
  NAME_UNKNOWN: {
    code: "NAME_UNKNOWN",
    status: 404,
    message: "repository name not known to registry",
  },
  SIZE_INVALID: {
    code: "SIZE_INVALID",
    status: 400,
    message: "provided length did not match content length",
  },
  UNAUTHORIZED: { code: "UNAUTHORIZED", status: 401, message: "authentication required" },
  DENIED: { code: "DENIED", status: 403, message: "requested access to the resource is denied" },
  UNSUPPORTED: { code: "UNSUPPORTED", status: 405, message: "the operation is unsupported" },
  TOOMANYREQUESTS: { code: "TOOMANYREQUESTS", status: 429, message: "too many requests" },
  UNAVAILABLE: { code: "UNAVAILABLE", status: 503, message: "service unavailable" },
  UNKNOWN: { code: "UNKNOWN", status: 500, message: "unknown error" },

  /** No route has this path. */
  ROUTE_UNKNOWN: { code: "NAME_UNKNOWN", status: 404, message: "not found" },
  /** The route exists but not for this method (`Allow` lists the ones it takes). */
  METHOD_NOT_ALLOWED: { code: "UNSUPPORTED", status: 405, message: "method not allowed here" },
  /** A query parameter the spec gives no code of its own (`n`, `last`, `service`). */
  PARAMETER_INVALID: { code: "UNSUPPORTED", status: 400, message: "invalid query parameter" },
  /** A token request for a service the token endpoint does not serve. */
  SERVICE_INVALID: { code: "DENIED", status: 400, message: "unknown service" },
  /** A blob `Range` outside the blob. */
  RANGE_NOT_SATISFIABLE: {
    code: "SIZE_INVALID",
    status: 416,
    message: "requested range not satisfiable",
  },
  /** An upload chunk whose `Content-Range` is malformed or does not start at the offset. */
  UPLOAD_RANGE_INVALID: {
    code: "BLOB_UPLOAD_INVALID",
    status: 416,
    message: "invalid Content-Range: expected <start>-<end> starting at the upload's offset",
  },
  /** A request body over the configured limit. */
  BODY_TOO_LARGE: { code: "SIZE_INVALID", status: 413, message: "request body too large" },
  /** A manifest over the configured limit. */
  MANIFEST_TOO_LARGE: { code: "MANIFEST_INVALID", status: 413, message: "manifest too large" },
  /** Too many `?tag=` parameters on a manifest push. */
  URI_TOO_LONG: { code: "MANIFEST_INVALID", status: 414, message: "too many parameters" },
  /** Request headers over the configured limit. */
  HEADERS_TOO_LARGE: {
    code: "SIZE_INVALID",
    status: 431,
    message: "request headers too large",
  },
  /** A request body that stalled or crawled. */
  BODY_TIMEOUT: { code: "BLOB_UPLOAD_INVALID", status: 408, message: "request body too slow" },
  /** The storage backend did not answer (after its own retries). */
  STORAGE_UNAVAILABLE: {
    code: "UNAVAILABLE",
    status: 503,
    message: "the storage backend is unreachable; try again",
  },
  /** An index that names manifests the repository lacks. */
  INDEX_MANIFEST_UNKNOWN: {
    code: "MANIFEST_UNKNOWN",
    status: 400,
    message: "index references manifests not in the repository",
  },
} as const satisfies Record<string, Entry>;

/** A name of the {@link ERROR_CATALOGUE}. */
export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** Options of a {@link RegistryError} beyond its catalogue entry. */
export interface RegistryErrorOptions {
  /** Message, when a more precise one than the catalogue's helps the user. */
  message?: string;
  /** Extra headers for the response (e.g. `Range`, `WWW-Authenticate`, `Retry-After`). */
  headers?: Record<string, string>;
}

/** The one error type of berth: it knows how to become its own response. */
export class RegistryError extends Error {
  /** Its catalogue entry. */
  readonly kind: ErrorCode;
  /** The spec's error code its body carries. */
  readonly code: SpecCode;
  /** The HTTP status of the response. */
  readonly status: number;
  /** Structured detail for the error body. */
  readonly detail: unknown;
  /** Extra response headers. */
  readonly headers: Record<string, string>;

  /** Build an error from its catalogue entry, an optional detail and options. */
  constructor(kind: ErrorCode, detail?: unknown, options: RegistryErrorOptions = {}) {
    const entry: Entry = ERROR_CATALOGUE[kind];
    super(options.message ?? entry.message);
    this.name = "RegistryError";
    this.kind = kind;
    this.code = entry.code;
    this.status = entry.status;
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
    headers.set("Content-Type", "application/json; charset=utf-8");
    const body = JSON.stringify(this.toBody());
    if (method === "HEAD") {
      // No body, but the length the GET's body would have.
      headers.set("Content-Length", String(new TextEncoder().encode(body).length));
      return new Response(null, { status: this.status, headers });
    }
    return new Response(body, { status: this.status, headers });
  }
}

/**
 * Whether an unexpected error is a storage failure (an I/O error of the runtime or of a storage
 * client), as the storage-error metric counts them; bugs and the like are not.
 */
export function isStorageError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error instanceof StorageUnavailable) return true;
  if (Object.values(Deno.errors).some((type) => error instanceof type)) return true;
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" && /^E[A-Z]+$/.test(code);
}

/** The registry error of each kind of invalid OCI input. */
const OCI_ERRORS: Record<OciErrorKind, ErrorCode> = {
  name: "NAME_INVALID",
  digest: "DIGEST_INVALID",
  tag: "MANIFEST_INVALID",
  manifest: "MANIFEST_INVALID",
};

/** The registry error an {@link OciError} answers with (where no service chose another). */
export function fromOciError(error: OciError): RegistryError {
  return new RegistryError(OCI_ERRORS[error.kind], error.detail, { message: error.message });
}

/** `error` as a registry error when it is one or an {@link OciError}; else `undefined`. */
export function asRegistryError(error: unknown): RegistryError | undefined {
  if (error instanceof RegistryError) return error;
  if (error instanceof OciError) return fromOciError(error);
  return undefined;
}
