/**
 * The error catalogue against the spec: a 4xx JSON body may only carry the spec's own codes.
 *
 * @module
 */
import assert from "node:assert/strict";
import { asRegistryError, ERROR_CATALOGUE, RegistryError } from "../src/errors.ts";
import { OciError } from "../src/oci/errors.ts";

/** The OCI distribution spec v1.1 "Error Codes" table (code-1 … code-14). */
const SPEC_CODES = [
  "BLOB_UNKNOWN",
  "BLOB_UPLOAD_INVALID",
  "BLOB_UPLOAD_UNKNOWN",
  "DIGEST_INVALID",
  "MANIFEST_BLOB_UNKNOWN",
  "MANIFEST_INVALID",
  "MANIFEST_UNKNOWN",
  "NAME_INVALID",
  "NAME_UNKNOWN",
  "SIZE_INVALID",
  "UNAUTHORIZED",
  "DENIED",
  "UNSUPPORTED",
  "TOOMANYREQUESTS",
];

Deno.test("errors: every catalogue entry answered with a 4xx carries one of the spec's 14 codes", () => {
  for (const [name, { code, status }] of Object.entries(ERROR_CATALOGUE)) {
    if (status >= 400 && status < 500) assert.ok(SPEC_CODES.includes(code), name);
    else assert.ok(status >= 500, `${name} is a 5xx`);
  }
  for (const code of SPEC_CODES) {
    assert.equal(ERROR_CATALOGUE[code as keyof typeof ERROR_CATALOGUE].code, code);
  }
});

Deno.test("errors: the catalogue owns the statuses beyond the spec codes' own", () => {
  const statuses = Object.fromEntries(
    Object.entries(ERROR_CATALOGUE).map(([name, { status }]) => [name, status]),
  );
  assert.equal(statuses.RANGE_NOT_SATISFIABLE, 416);
  assert.equal(statuses.UPLOAD_RANGE_INVALID, 416);
  assert.equal(statuses.BODY_TOO_LARGE, 413);
  assert.equal(statuses.HEADERS_TOO_LARGE, 431);
  assert.equal(statuses.BODY_TIMEOUT, 408);
  assert.equal(statuses.METHOD_NOT_ALLOWED, 405);
  assert.equal(statuses.ROUTE_UNKNOWN, 404);
});

Deno.test("errors: a 416 keeps its spec code and headers in the body and response", async () => {
  const error = new RegistryError("UPLOAD_RANGE_INVALID", { expected: 3 }, {
    headers: { Range: "0-2" },
  });
  const response = error.toResponse();
  assert.equal(response.status, 416);
  assert.equal(response.headers.get("Range"), "0-2");
  assert.match(response.headers.get("Content-Type") ?? "", /^application\/json/);
  const body = await response.json();
  assert.equal(body.errors[0].code, "BLOB_UPLOAD_INVALID");
  assert.deepEqual(body.errors[0].detail, { expected: 3 });
});

Deno.test("errors: a HEAD answer has no body but the GET's Content-Length and Content-Type", async () => {
  const error = new RegistryError("MANIFEST_UNKNOWN", { tag: "étiquette" });
  const get = error.toResponse("GET");
  const head = error.toResponse("HEAD");
  const bytes = (await get.bytes()).length;
  assert.equal(head.status, 404);
  assert.equal(head.body, null);
  assert.equal(head.headers.get("Content-Length"), String(bytes));
  assert.equal(head.headers.get("Content-Type"), get.headers.get("Content-Type"));
});

Deno.test("errors: invalid OCI input maps to the spec's codes in one place", () => {
  const cases = [
    ["name", "NAME_INVALID"],
    ["digest", "DIGEST_INVALID"],
    ["tag", "MANIFEST_INVALID"],
    ["manifest", "MANIFEST_INVALID"],
  ] as const;
  for (const [kind, code] of cases) {
    const error = asRegistryError(new OciError(kind, "bad", { x: 1 }));
    assert.ok(error);
    assert.equal(error.code, code);
    assert.equal(error.status, 400);
    assert.deepEqual(error.detail, { x: 1 });
  }
  assert.equal(asRegistryError(new Error("boom")), undefined);
});
