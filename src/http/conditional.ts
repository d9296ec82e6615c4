/**
 * Conditional requests: `If-None-Match` against a strong entity tag (RFC 9110 13.1.2).
 *
 * @module
 */

/**
 * Whether an `If-None-Match` header matches `etag` (a quoted strong tag): `*`, or any listed tag
 * equal to it, weakly compared (a `W/` prefix is ignored), as GET and HEAD require.
 */
export function ifNoneMatch(header: string | null, etag: string): boolean {
  if (header === null) return false;
  return header.split(",").some((entry) => {
    const tag = entry.trim();
    return tag === "*" || tag === etag || tag === `W/${etag}`;
  });
}
