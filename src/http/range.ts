/**
 * Parsing of `Range` (blob GET) and `Content-Range` (upload PATCH) headers.
 *
 * @module
 */
import type { ByteRange } from "../storage/store.ts";

/**
 * Parse a `Range` header against a resource of `size` bytes: a single `bytes=` range gives its
 * inclusive bounds, `"unsatisfiable"` when it is out of bounds, `undefined` when the header is
 * absent, malformed or asks for several ranges (then the whole resource is served, as RFC 9110
 * allows).
 */
export function parseRange(
  header: string | null,
  size: number,
): ByteRange | "unsatisfiable" | undefined {
  if (header === null) return undefined;
  const match = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!match) return undefined;
  const [, first = "", last = ""] = match;
  if (first === "" && last === "") return undefined;
  if (first === "") {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return "unsatisfiable";
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === "" ? size - 1 : Math.min(Number(last), size - 1);
  if (last !== "" && Number(last) < start) return undefined;
  if (start >= size) return "unsatisfiable";
  return { start, end };
}

/**
 * Parse an upload `Content-Range` header (`<start>-<end>`, optionally with a `bytes ` or `bytes=`
 * prefix). Returns `undefined` when absent, `"invalid"` when malformed.
 */
export function parseContentRange(header: string | null): ByteRange | "invalid" | undefined {
  if (header === null) return undefined;
  const match = /^\s*(?:bytes[ =])?\s*(\d{1,15})-(\d{1,15})(?:\/(?:\d{1,15}|\*))?\s*$/i.exec(
    header,
  );
  if (!match) return "invalid";
  const start = Number(match[1]);
  const end = Number(match[2]);
  if (end < start) return "invalid";
  return { start, end };
}

/** Parse a `Content-Length` header: a non-negative integer, `undefined` when absent. */
export function parseContentLength(header: string | null): number | "invalid" | undefined {
  if (header === null) return undefined;
  if (!/^\d{1,15}$/.test(header.trim())) return "invalid";
  return Number(header.trim());
}
