/**
 * berth ships with one Deno release (`DENO_VERSION`, src/version.ts): the README's commands, CI
 * (`.ci/run`) and the Docker image all name it, so none of them drifts to a release with the
 * chunked-upload freeze (docs/chunked_uploads.md). `scripts/build_image.ts` refuses other releases.
 *
 * @module
 */
import assert from "node:assert/strict";
import { DENO_VERSION } from "../../src/version.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const read = (path: string) => Deno.readTextFile(`${ROOT}${path}`);

Deno.test("runtime pin: the README's npx and npm commands name DENO_VERSION", async () => {
  const readme = await read("README.md");
  assert.ok(readme.includes(`npx -y deno@${DENO_VERSION} task start`));
  assert.ok(readme.includes(`npx -y deno@${DENO_VERSION} task test`));
  assert.ok(readme.includes(`npm install -g deno@${DENO_VERSION}`));
  const others = [...readme.matchAll(/deno@([\w.]+)/g)].map((m) => m[1]);
  assert.deepEqual(others.filter((v) => v !== DENO_VERSION), []);
});

Deno.test("runtime pin: .ci/run reads DENO_VERSION from src/version.ts; the Dockerfile names it", async () => {
  const ci = await read(".ci/run");
  // The script's sed pattern finds the constant as src/version.ts writes it.
  assert.ok(
    ci.includes(`sed -n 's/^export const DENO_VERSION = "\\(.*\\)";$/\\1/p' src/version.ts`),
  );
  const version = await read("src/version.ts");
  assert.match(version, new RegExp(`^export const DENO_VERSION = "${DENO_VERSION}";$`, "m"));
  assert.doesNotMatch(ci, /deno@2\b(?!\.)/);
  const dockerfile = await read("Dockerfile");
  assert.match(
    dockerfile,
    new RegExp(`^ARG DENO_VERSION=${DENO_VERSION.replaceAll(".", "\\.")}$`, "m"),
  );
});
