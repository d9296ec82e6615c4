/**
 * Request heads: what a well-formed head says (method, target, version, fields, framing,
 * keep-alive, 100-continue), and every ambiguity that could let two parsers disagree about where
 * a request ends refused with its status.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  checkTrailer,
  findHeadEnd,
  parseChunkSize,
  parseRequestHead,
  ProtocolError,
} from "../../src/http/http1_head.ts";

const enc = new TextEncoder();
const head = (text: string) => parseRequestHead(enc.encode(text));

/** The status `text` is refused with. */
function refused(text: string): number {
  try {
    head(text);
  } catch (error) {
    assert.ok(error instanceof ProtocolError, String(error));
    return error.status;
  }
  assert.fail(`accepted: ${JSON.stringify(text)}`);
}

Deno.test("head: findHeadEnd finds the blank line, also when scanning resumes mid-way", () => {
  const bytes = enc.encode("GET / HTTP/1.1\r\nHost: x\r\n\r\nNEXT");
  assert.equal(findHeadEnd(bytes, 0, bytes.length), bytes.length - 4);
  assert.equal(findHeadEnd(bytes, 20, bytes.length), bytes.length - 4);
  assert.equal(findHeadEnd(bytes, 0, bytes.length - 6), -1);
  assert.equal(findHeadEnd(enc.encode("GET / HTTP/1.1\n\n"), 0, 16), -1, "bare LFs end nothing");
});

Deno.test("head: a GET with fields, names lower-cased, values trimmed, order kept", () => {
  const parsed = head(
    "GET /v2/a/manifests/b?x=1 HTTP/1.1\r\nHost: reg:5000\r\n" +
      "Accept:  a/b \r\nX-Two: 1\r\nx-two: 2\r\n\r\n",
  );
  assert.equal(parsed.method, "GET");
  assert.equal(parsed.target, "/v2/a/manifests/b?x=1");
  assert.equal(parsed.minor, 1);
  assert.equal(parsed.host, "reg:5000");
  assert.deepEqual(parsed.headers, [
    ["host", "reg:5000"],
    ["accept", "a/b"],
    ["x-two", "1"],
    ["x-two", "2"],
  ]);
  assert.deepEqual(parsed.body, { kind: "none" });
  assert.equal(parsed.keepAlive, true);
  assert.equal(parsed.expectContinue, false);
});

Deno.test("head: keep-alive follows the version and Connection", () => {
  assert.equal(head("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").keepAlive, false);
  assert.equal(head("GET / HTTP/1.1\r\nHost: x\r\nConnection: te, Close\r\n\r\n").keepAlive, false);
  assert.equal(head("GET / HTTP/1.0\r\n\r\n").keepAlive, false);
  assert.equal(head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keepAlive, true);
  assert.equal(head("GET / HTTP/1.0\r\n\r\n").host, undefined, "HTTP/1.0 may omit Host");
});

Deno.test("head: Expect: 100-continue on HTTP/1.1 only", () => {
  const text = "PUT / HTTP/1.%d\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n";
  assert.equal(head(text.replace("%d", "1")).expectContinue, true);
  assert.equal(head(text.replace("%d", "0")).expectContinue, false);
});

Deno.test("head: framing by Content-Length, chunked, or none", () => {
  const framing = (fields: string) => head(`PUT / HTTP/1.1\r\nHost: x\r\n${fields}\r\n`).body;
  assert.deepEqual(framing("Content-Length: 42\r\n"), { kind: "length", length: 42 });
  assert.deepEqual(framing("Content-Length: 0\r\n"), { kind: "none" });
  assert.deepEqual(framing("Content-Length: 7, 7\r\nContent-Length: 7\r\n"), {
    kind: "length",
    length: 7,
  });
  assert.deepEqual(framing("Transfer-Encoding: Chunked\r\n"), { kind: "chunked" });
  assert.deepEqual(framing(""), { kind: "none" });
});

Deno.test("head: smuggling shapes are refused", () => {
  const put = (fields: string) => `PUT / HTTP/1.1\r\nHost: x\r\n${fields}\r\n`;
  // Both framings: a proxy may honour the other one.
  assert.equal(refused(put("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n")), 400);
  assert.equal(refused(put("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n")), 400);
  // Lengths that disagree or are not plain digits.
  assert.equal(refused(put("Content-Length: 5\r\nContent-Length: 6\r\n")), 400);
  assert.equal(refused(put("Content-Length: 5, 6\r\n")), 400);
  assert.equal(refused(put("Content-Length: +5\r\n")), 400);
  assert.equal(refused(put("Content-Length: 0x5\r\n")), 400);
  assert.equal(refused(put("Content-Length: 5 5\r\n")), 400);
  assert.equal(refused(put("Content-Length: 99999999999999999999\r\n")), 400);
  assert.equal(refused(put("Content-Length: \r\n")), 400);
  // chunked must be the last coding; other codings are not implemented.
  assert.equal(refused(put("Transfer-Encoding: chunked, identity\r\n")), 400);
  assert.equal(refused(put("Transfer-Encoding: identity\r\n")), 400);
  assert.equal(refused(put("Transfer-Encoding: gzip, chunked\r\n")), 501);
  assert.equal(refused(put("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n")), 501);
  assert.equal(refused(put("Transfer-Encoding: xchunked\r\n")), 400);
  assert.equal(refused("PUT / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
  // Whitespace before the colon, folded lines, bare CR or LF inside a line, NUL.
  assert.equal(refused(put("Transfer-Encoding : chunked\r\n")), 400);
  assert.equal(refused(put("X-A: 1\r\n Transfer-Encoding: chunked\r\n")), 400);
  assert.equal(refused(put("X-A: 1\rTransfer-Encoding: chunked\r\n")), 400);
  assert.equal(refused(put("X-A: 1\nTransfer-Encoding: chunked\r\n")), 400);
  assert.equal(refused(put("X-A: a\0b\r\n")), 400);
  assert.equal(refused(put(": empty name\r\n")), 400);
  assert.equal(refused(put("No colon\r\n")), 400);
  assert.equal(refused(put("X(A): 1\r\n")), 400);
});

Deno.test("head: Host: exactly one on HTTP/1.1, and an authority", () => {
  assert.equal(refused("GET / HTTP/1.1\r\n\r\n"), 400);
  assert.equal(refused("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
  assert.equal(refused("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), 400);
  assert.equal(refused("GET / HTTP/1.1\r\nHost: a@b\r\n\r\n"), 400);
  assert.equal(head("GET / HTTP/1.1\r\nHost: [::1]:5000\r\n\r\n").host, "[::1]:5000");
});

Deno.test("head: request lines: methods are tokens, targets visible, versions 1.0 and 1.1", () => {
  assert.equal(head("PROPFIND /x HTTP/1.1\r\nHost: x\r\n\r\n").method, "PROPFIND");
  assert.equal(head("get /x HTTP/1.1\r\nHost: x\r\n\r\n").method, "get", "case kept");
  assert.equal(
    head("GET http://reg/v2/ HTTP/1.1\r\nHost: reg\r\n\r\n").target,
    "http://reg/v2/",
    "absolute-form",
  );
  assert.equal(refused("GET /x HTTP/2.0\r\nHost: x\r\n\r\n"), 400);
  assert.equal(refused("GET /x HTTP/1.2\r\nHost: x\r\n\r\n"), 400);
  assert.equal(refused("GET /x HTTP/1.1 extra\r\nHost: x\r\n\r\n"), 400);
  assert.equal(refused("GET  /x HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
  assert.equal(refused("G@T /x HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
  assert.equal(refused("GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
  assert.equal(refused("GET /x\r\nHost: x\r\n\r\n"), 400);
  assert.equal(refused("\r\n\r\n"), 400);
});

Deno.test("head: obs-text in values is kept byte for byte", () => {
  const bytes = new Uint8Array([
    ...enc.encode("GET / HTTP/1.1\r\nHost: x\r\nX-A: "),
    0xe9,
    0xff,
    ...enc.encode("\r\n\r\n"),
  ]);
  assert.deepEqual(parseRequestHead(bytes).headers[1], ["x-a", "\xe9\xff"]);
});

Deno.test("chunks: sizes are hex with optional extensions, nothing else", () => {
  assert.equal(parseChunkSize("1a"), 26);
  assert.equal(parseChunkSize("FF;name=value"), 255);
  assert.equal(parseChunkSize("0"), 0);
  assert.equal(parseChunkSize("10 ;ext"), 16);
  for (const bad of ["", "zz", "-1", "+1", "0x10", " 1", "ffffffffffffffff", "1\x00", "1;\x01"]) {
    assert.throws(() => parseChunkSize(bad), ProtocolError, JSON.stringify(bad));
  }
  checkTrailer("X-Checksum: abc");
  assert.throws(() => checkTrailer("no colon"), ProtocolError);
  assert.throws(() => checkTrailer("X-A: \x01"), ProtocolError);
});
