/**
 * The error catalogue against the spec: a 4xx JSON body may only carry the spec's own codes.
 *
 * @module
 */
import assert from "node:assert/strict";
import { ERROR_CATALOGUE, RegistryError } from "../src/errors.ts";

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

Deno.test("errors: every catalogue code answered with a 4xx is one of the spec's 14 codes", () => {
  for (const [code, { status }] of Object.entries(ERROR_CATALOGUE)) {
    if (status >= 400 && status < 500) assert.ok(SPEC_CODES.includes(code), code);
    else assert.ok(status >= 500, `${code} is a 5xx`);
  }
  for (const code of SPEC_CODES) assert.ok(code in ERROR_CATALOGUE, code);
});

Deno.test("errors: a 416 keeps its spec code and headers in the body and response", async () => {
  const error = new RegistryError("BLOB_UPLOAD_INVALID", { expected: 3 }, {
    status: 416,
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
