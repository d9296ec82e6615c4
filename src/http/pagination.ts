/**
 * List pagination shared by the tags list and the catalog: `n` and `last` query parameters, the
 * page cap, and the `Link: <...>; rel="next"` header.
 *
 * @module
 */
import { RegistryError } from "../errors.ts";

/** A parsed page request. */
export interface PageRequest {
  /** Most entries to return (already capped). */
  limit: number;
  /** Return entries sorted after this one. */
  last?: string;
}

/** Longest `last` value accepted (names are at most 255 characters, tags 128). */
const MAX_LAST = 512;

/**
 * Read `n` and `last` from a URL. Without `n`, a page holds `maxEntries` entries; a larger `n` is
 * cut to `maxEntries` (the `Link` header tells the client to go on). A non-numeric or negative `n`
 * is 400 `PARAMETER_INVALID`.
 */
export function parsePage(url: URL, maxEntries: number): PageRequest {
  const n = url.searchParams.get("n");
  const last = url.searchParams.get("last");
  let limit = maxEntries;
  if (n !== null) {
    if (!/^\d{1,15}$/.test(n)) {
      throw new RegistryError("PARAMETER_INVALID", { n: n.slice(0, 50) }, {
        message: "invalid number of results requested: n must be a non-negative integer",
      });
    }
    limit = Math.min(Number(n), maxEntries);
  }
  if (last !== null && last.length > MAX_LAST) {
    throw new RegistryError("PARAMETER_INVALID", { last: last.slice(0, 50) }, {
      message: `last must be at most ${MAX_LAST} characters`,
    });
  }
  return { limit, ...(last !== null && last !== "" && { last }) };
}

const encoder = new TextEncoder();

/** A document as JSON bytes. */
export function encodeJson(document: unknown): Uint8Array<ArrayBuffer> {
  return encoder.encode(JSON.stringify(document));
}

/**
 * A page's JSON body as bytes with its `Content-Length` (a body without a length is read again to
 * be measured before it is sent, which cost a list of 1,000 tags a third of its time).
 */
export function jsonPage(
  document: unknown,
  headers: Record<string, string>,
): Response {
  const bytes = encodeJson(document);
  headers["Content-Length"] = String(bytes.byteLength);
  return new Response(bytes, { headers });
}

/** Headers of a page: a `Link` to the next one when `more` entries remain after it. */
export function pageHeaders(
  path: string,
  page: PageRequest,
  entries: readonly string[],
  more: boolean,
): Record<string, string> {
  const headers: Record<string, string> = { "Content-Type": "application/json; charset=utf-8" };
  const tail = entries.at(-1);
  if (more && tail !== undefined) {
    const query = new URLSearchParams({ n: String(page.limit), last: tail });
    headers["Link"] = `<${path}?${query}>; rel="next"`;
  }
  return headers;
}
