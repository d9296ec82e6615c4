/**
 * Unit tests of digest parsing and incremental hashing.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { OciError } from "../../src/oci/errors.ts";
import { digestBytes, Digester, parseDigest, tryParseDigest } from "../../src/oci/digest.ts";

const SHA256 = "sha256:" + "a".repeat(64);
const SHA512 = "sha512:" + "0123456789abcdef".repeat(8);

Deno.test("digest: sha256 and sha512 digests parse into algorithm and hex", () => {
  assert.deepEqual(parseDigest(SHA256), {
    algorithm: "sha256",
    hex: "a".repeat(64),
    value: SHA256,
  });
  assert.equal(parseDigest(SHA512).algorithm, "sha512");
});

Deno.test("digest: malformed, unsupported or wrong-length digests are refused", () => {
  const bad = [
    "",
    "sha256",
    "sha256:",
    "sha256:" + "a".repeat(63),
    "sha256:" + "a".repeat(65),
    "sha256:" + "A".repeat(64),
    "sha512:" + "a".repeat(64),
    "md5:" + "a".repeat(32),
    "sha256:../" + "a".repeat(61),
    "sha256:" + "g".repeat(64),
    "SHA256:" + "a".repeat(64),
    "sha256:" + "a".repeat(64) + "\n",
    "x".repeat(300),
  ];
  for (const input of bad) {
    assert.equal(tryParseDigest(input), undefined, input);
    assert.throws(
      () => parseDigest(input),
      (e) => e instanceof OciError && e.kind === "digest",
    );
  }
});

Deno.test("digest: digestBytes matches node:crypto for both algorithms", () => {
  const bytes = new TextEncoder().encode("hello");
  assert.equal(
    digestBytes(bytes).value,
    `sha256:${createHash("sha256").update(bytes).digest("hex")}`,
  );
  assert.equal(
    digestBytes(bytes, "sha512").value,
    `sha512:${createHash("sha512").update(bytes).digest("hex")}`,
  );
});

Deno.test("digest: a Digester fed in pieces equals one digest of the whole, and peek keeps it going", () => {
  const whole = new Uint8Array(100_000).map((_, i) => i % 251);
  const digester = new Digester();
  digester.update(whole.subarray(0, 7));
  const early = digester.peek();
  assert.equal(early.value, digestBytes(whole.subarray(0, 7)).value);
  digester.update(whole.subarray(7, 60_000));
  digester.update(whole.subarray(60_000));
  assert.equal(digester.size, whole.byteLength);
  assert.equal(digester.peek().value, digestBytes(whole).value);
  assert.equal(digester.peek().value, digestBytes(whole).value, "peek twice");
});
