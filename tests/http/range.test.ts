/**
 * Unit tests of `Range`, `Content-Range` and `Content-Length` parsing.
 *
 * @module
 */
import assert from "node:assert/strict";
import { parseContentLength, parseContentRange, parseRange } from "../../src/http/range.ts";

Deno.test("range: absent, malformed and multi-part Range headers give undefined", () => {
  for (const header of [null, "", "bytes=", "bytes=-", "items=0-1", "bytes=0-1,2-3", "bytes=a-b"]) {
    assert.equal(parseRange(header, 100), undefined, String(header));
  }
});

Deno.test("range: a single range gives inclusive bounds clamped to the size", () => {
  assert.deepEqual(parseRange("bytes=0-0", 100), { start: 0, end: 0 });
  assert.deepEqual(parseRange("bytes=10-19", 100), { start: 10, end: 19 });
  assert.deepEqual(parseRange("bytes=90-", 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange("bytes=90-500", 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange("BYTES = 1 - 2", 100), { start: 1, end: 2 });
});

Deno.test("range: suffix ranges count from the end", () => {
  assert.deepEqual(parseRange("bytes=-10", 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange("bytes=-500", 100), { start: 0, end: 99 });
});

Deno.test("range: ranges past the end, empty suffixes and empty blobs are unsatisfiable", () => {
  assert.equal(parseRange("bytes=100-", 100), "unsatisfiable");
  assert.equal(parseRange("bytes=200-300", 100), "unsatisfiable");
  assert.equal(parseRange("bytes=-0", 100), "unsatisfiable");
  assert.equal(parseRange("bytes=0-", 0), "unsatisfiable");
  assert.equal(parseRange("bytes=-5", 0), "unsatisfiable");
});

Deno.test("range: a range whose end is before its start is ignored", () => {
  assert.equal(parseRange("bytes=5-2", 100), undefined);
});

Deno.test("range: Content-Range accepts start-end with or without a unit and total", () => {
  assert.equal(parseContentRange(null), undefined);
  assert.deepEqual(parseContentRange("0-99"), { start: 0, end: 99 });
  assert.deepEqual(parseContentRange("bytes 100-199/*"), { start: 100, end: 199 });
  assert.deepEqual(parseContentRange("bytes=100-199/1000"), { start: 100, end: 199 });
});

Deno.test("range: malformed Content-Range headers are invalid", () => {
  for (const header of ["", "abc", "5-", "-5", "9-3", "bytes 1-2/x", "1-2-3", "1e3-2e3"]) {
    assert.equal(parseContentRange(header), "invalid", header);
  }
});

Deno.test("range: Content-Length must be a plain non-negative integer", () => {
  assert.equal(parseContentLength(null), undefined);
  assert.equal(parseContentLength("0"), 0);
  assert.equal(parseContentLength(" 1234 "), 1234);
  for (const header of ["-1", "1.5", "abc", "", "1e3", "0x10", "9".repeat(16)]) {
    assert.equal(parseContentLength(header), "invalid", header);
  }
});
