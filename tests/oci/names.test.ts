/**
 * Unit tests of repository names, tags and references.
 *
 * @module
 */
import assert from "node:assert/strict";
import { OciError } from "../../src/oci/errors.ts";
import { checkName, isValidName, isValidTag, parseReference } from "../../src/oci/names.ts";

Deno.test("names: valid repository names", () => {
  for (
    const name of [
      "a",
      "library/alpine",
      "a/b/c/d",
      "a.b",
      "a_b",
      "a__b",
      "a-b",
      "a---b",
      "0",
      "x9",
    ]
  ) {
    assert.ok(isValidName(name), name);
  }
  assert.ok(isValidName(["a".repeat(100), "b".repeat(100), "c".repeat(53)].join("/")));
});

Deno.test("names: invalid repository names", () => {
  const bad = [
    "",
    "A",
    "a/",
    "/a",
    "a//b",
    "..",
    "a/../b",
    "a/./b",
    ".a",
    "a.",
    "a___b",
    "a_.b",
    "a b",
    "a%2fb",
    "a\\b",
    "a\0b",
    "a".repeat(256),
  ];
  for (const name of bad) {
    assert.ok(!isValidName(name), JSON.stringify(name));
    assert.throws(
      () => checkName(name),
      (e) => e instanceof OciError && e.kind === "name",
    );
  }
});

Deno.test("names: tags follow [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}", () => {
  for (const tag of ["latest", "v1.2.3", "_x", "A-b_c.d", "t".repeat(128)]) {
    assert.ok(isValidTag(tag), tag);
  }
  for (const tag of ["", ".x", "-x", "..", "a/b", "a:b", "t".repeat(129), "a b", "a%2e"]) {
    assert.ok(!isValidTag(tag), tag);
  }
});

Deno.test("names: references are tags or digests; bad ones say which", () => {
  assert.deepEqual(parseReference("latest"), { kind: "tag", tag: "latest" });
  const digest = "sha256:" + "b".repeat(64);
  const ref = parseReference(digest);
  assert.equal(ref.kind, "digest");
  assert.throws(
    () => parseReference("sha256:short"),
    (e) => e instanceof OciError && e.kind === "digest",
  );
  assert.throws(
    () => parseReference(".."),
    (e) => e instanceof OciError && e.kind === "tag",
  );
});
