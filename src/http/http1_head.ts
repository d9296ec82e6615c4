/**
 * HTTP/1.1 request heads (RFC 9112): where a head ends in a buffer, and what it says: method,
 * target, version, header fields, how the body is framed, whether the connection stays open.
 * Strict where leniency lets two parsers disagree about where a request ends (request
 * smuggling): lines end with CRLF, no folded lines, no space before a field's colon, one framing
 * (`Content-Length` or `Transfer-Encoding: chunked`, never both), one `Host`.
 *
 * @module
 */

/** How a request's body is framed. */
export type BodyFraming =
  | { kind: "none" }
  | { kind: "length"; length: number }
  | { kind: "chunked" };

/** A parsed request head. */
export interface RequestHead {
  /** The method, as sent (case-sensitive). */
  method: string;
  /** The request target as sent (origin-form `/path?query` or absolute-form `http://h/p`). */
  target: string;
  /** The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minor: 0 | 1;
  /** Header fields in order, names lower-cased. */
  headers: [string, string][];
  /** The `Host` field, when sent. */
  host: string | undefined;
  /** How the body is framed. */
  body: BodyFraming;
  /** Whether the client keeps the connection open after the response. */
  keepAlive: boolean;
  /** Whether the client waits for `100 Continue` before it sends the body. */
  expectContinue: boolean;
}

/** A request the server refuses before it reaches the handler, with the status to answer. */
export class ProtocolError extends Error {
  /** The HTTP status of the answer. */
  readonly status: 400 | 405 | 414 | 431 | 501;

  constructor(status: ProtocolError["status"], message: string) {
    super(message);
    this.name = "ProtocolError";
    this.status = status;
  }
}

const CR = 13;
const LF = 10;

/**
 * Where the head in `buffer[0, length)` ends: the index just past its blank line, or -1 while
 * it is incomplete. Scanning resumes at `from` (a previous call's `length`).
 */
export function findHeadEnd(buffer: Uint8Array, from: number, length: number): number {
  for (let i = Math.max(3, from); i < length; i++) {
    if (
      buffer[i] === LF && buffer[i - 1] === CR && buffer[i - 2] === LF && buffer[i - 3] === CR
    ) {
      return i + 1;
    }
  }
  return -1;
}

/** Whether `buffer[0, length)` holds a complete line (the request line, when a head starts). */
export function hasLine(buffer: Uint8Array, length: number): boolean {
  return buffer.subarray(0, length).indexOf(LF) >= 0;
}

/** Decodes ASCII (where UTF-8 and one character per byte agree) in one call. */
const ASCII = new TextDecoder();
/** Any character past ASCII (every UTF-16 code unit from U+0080 up). */
const NON_ASCII = /[\u0080-\uffff]/;

/** The bytes as a string, one character per byte (field values may carry obs-text). */
export function latin1(bytes: Uint8Array): string {
  // Heads are ASCII nearly always: decoded in one call, kept when nothing in them was not ASCII
  // (any other byte becomes a character outside it, or fewer characters than bytes).
  if (bytes.length <= 8192) {
    const ascii = ASCII.decode(bytes);
    if (ascii.length === bytes.length && !NON_ASCII.test(ascii)) return ascii;
  }
  let text = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192) as unknown as number[]);
  }
  return text;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const VERSION = /^HTTP\/\d+\.\d+$/;
/** Field values: visible characters, obs-text, spaces and tabs; no other control characters. */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
/** A `Host`: a registered name, IPv4 or bracketed IPv6, and an optional port. */
const HOST = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]*)(:\d{0,5})?$/;
const DIGITS = /^\d{1,15}$/;

/** Whether a character code is a space or a tab. */
function isBlank(code: number): boolean {
  return code === 32 || code === 9;
}

/** The framing of a request without a body (shared: never changed). */
const NO_BODY: BodyFraming = Object.freeze({ kind: "none" });

/** Method, target and version of a request line: `METHOD SP TARGET SP HTTP/d.d`. */
function requestLine(line: string): [string, string, string] {
  const first = line.indexOf(" ");
  const second = line.indexOf(" ", first + 1);
  const version = line.slice(second + 1);
  if (
    first <= 0 || second <= first + 1 || line.indexOf(" ", second + 1) >= 0 ||
    (version !== "HTTP/1.1" && !VERSION.test(version))
  ) throw new ProtocolError(400, "malformed request line");
  return [line.slice(0, first), line.slice(first + 1, second), version];
}

/** Parse a complete head (`findHeadEnd`'s bytes, blank line included). Throws {@link ProtocolError}. */
export function parseRequestHead(bytes: Uint8Array): RequestHead {
  const lines = latin1(bytes).split("\r\n");
  // The blank line and what follows the final CRLF.
  lines.length -= 2;
  const [method, target, version] = requestLine(lines[0] ?? "");
  if (!TOKEN.test(method)) throw new ProtocolError(400, "malformed method");
  if (version !== "HTTP/1.1" && version !== "HTTP/1.0") {
    // 505 would be the RFC's word, but bad input gets a 4xx here (no 5xx for a client's fault).
    throw new ProtocolError(400, "unsupported HTTP version");
  }
  if (!/^[\x21-\x7e]+$/.test(target)) throw new ProtocolError(400, "malformed target");
  const minor = version === "HTTP/1.1" ? 1 : 0;
  const headers: [string, string][] = [];
  let host: string | undefined;
  let hosts = 0;
  let lengths: string[] | undefined;
  let codings: string[] | undefined;
  let connection = "";
  let expect = "";
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(":");
    // No colon, an empty name, whitespace before the colon, a folded line: all refused.
    if (colon <= 0) throw new ProtocolError(400, "malformed header line");
    const name = line.slice(0, colon).toLowerCase();
    if (!TOKEN.test(name)) throw new ProtocolError(400, "malformed header name");
    // Spaces and tabs around the value are not part of it.
    let start = colon + 1;
    let end = line.length;
    while (start < end && isBlank(line.charCodeAt(start))) start++;
    while (end > start && isBlank(line.charCodeAt(end - 1))) end--;
    const value = line.slice(start, end);
    if (!FIELD_VALUE.test(value)) throw new ProtocolError(400, "malformed header value");
    headers.push([name, value]);
    switch (name) {
      case "host":
        host = value;
        hosts++;
        break;
      case "content-length":
        (lengths ??= []).push(...value.split(",").map((part) => part.trim()));
        break;
      case "transfer-encoding":
        (codings ??= []).push(...value.split(",").map((part) => part.trim().toLowerCase()));
        break;
      case "connection":
        connection += `,${value.toLowerCase()}`;
        break;
      case "expect":
        expect = value.toLowerCase();
        break;
    }
  }
  if (hosts > 1 || (minor === 1 && hosts === 0)) {
    throw new ProtocolError(400, "a request needs exactly one Host");
  }
  if (host !== undefined && !HOST.test(host)) throw new ProtocolError(400, "malformed Host");
  const tokens = connection === "" ? [] : connection.split(",").map((token) => token.trim());
  return {
    method,
    target,
    minor,
    headers,
    host,
    body: lengths || codings ? framing(minor, lengths, codings) : NO_BODY,
    keepAlive: minor === 1 ? !tokens.includes("close") : tokens.includes("keep-alive"),
    expectContinue: minor === 1 && expect === "100-continue",
  };
}

/** How the body is framed, from the `Content-Length` and `Transfer-Encoding` values. */
function framing(
  minor: 0 | 1,
  lengths: string[] | undefined,
  codings: string[] | undefined,
): BodyFraming {
  if (codings) {
    // Both framings at once is how requests are smuggled past a proxy: refused, not resolved.
    if (lengths) throw new ProtocolError(400, "both Content-Length and Transfer-Encoding");
    if (minor === 0) throw new ProtocolError(400, "Transfer-Encoding in an HTTP/1.0 request");
    const listed = codings.filter((coding) => coding !== "");
    if (listed[listed.length - 1] !== "chunked") {
      throw new ProtocolError(400, "Transfer-Encoding must end with chunked");
    }
    if (listed.length > 1) {
      throw new ProtocolError(501, "only chunked transfer coding is supported");
    }
    return { kind: "chunked" };
  }
  if (lengths) {
    const first = lengths[0]!;
    if (!DIGITS.test(first) || lengths.some((length) => length !== first)) {
      throw new ProtocolError(400, "malformed Content-Length");
    }
    const length = Number(first);
    return length === 0 ? { kind: "none" } : { kind: "length", length };
  }
  return { kind: "none" };
}

/**
 * The size of a chunk from its size line (without CRLF): hex digits, then optional extensions
 * (ignored). Throws {@link ProtocolError} on anything else.
 */
export function parseChunkSize(line: string): number {
  const semicolon = line.indexOf(";");
  const digits = (semicolon < 0 ? line : line.slice(0, semicolon)).replace(/[ \t]+$/, "");
  if (!/^[0-9A-Fa-f]{1,12}$/.test(digits)) throw new ProtocolError(400, "malformed chunk size");
  if (semicolon >= 0 && !FIELD_VALUE.test(line.slice(semicolon))) {
    throw new ProtocolError(400, "malformed chunk extension");
  }
  return parseInt(digits, 16);
}

/** Check a trailer field line of a chunked body (trailers are read and dropped). */
export function checkTrailer(line: string): void {
  const colon = line.indexOf(":");
  if (colon <= 0 || !TOKEN.test(line.slice(0, colon))) {
    throw new ProtocolError(400, "malformed trailer line");
  }
  if (!FIELD_VALUE.test(line.slice(colon + 1))) throw new ProtocolError(400, "malformed trailer");
}

const REASONS: Record<number, string> = {
  100: "Continue",
  200: "OK",
  201: "Created",
  202: "Accepted",
  204: "No Content",
  206: "Partial Content",
  301: "Moved Permanently",
  302: "Found",
  304: "Not Modified",
  307: "Temporary Redirect",
  308: "Permanent Redirect",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  409: "Conflict",
  413: "Content Too Large",
  414: "URI Too Long",
  416: "Range Not Satisfiable",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
};

/** The status line of a response (`HTTP/1.1 200 OK` and CRLF). */
export function statusLine(status: number): string {
  return `HTTP/1.1 ${status} ${REASONS[status] ?? ""}\r\n`;
}
