/**
 * Immutable tags and retention with skopeo: a release tag cannot be overwritten or deleted, and
 * retention keeps the last pushed tags of a CI repository.
 *
 * @module
 */
import assert from "node:assert/strict";
import { parseConfig } from "../../src/config_yaml.ts";
import { buildLayout } from "../helpers/images.ts";
import { startServer } from "../helpers/server.ts";
import { run, skipWithout } from "../helpers/tools.ts";

const TLS = "--dest-tls-verify=false";

Deno.test({
  name: "policies(skopeo): an immutable tag refuses an overwrite and a delete; retention trims",
  ignore: skipWithout("skopeo", "umoci"),
  async fn() {
    const work = await Deno.makeTempDir({ prefix: "berth-policies-" });
    const { config } = parseConfig([
      "version: 0.1",
      "storage: {delete: {enabled: true}}",
      "policies:",
      '  - repositories: "release/*"',
      '    immutabletags: ["v*"]',
      '  - repositories: "ci/*"',
      "    retention: {keeplast: 1}",
    ].join("\n"));
    const server = await startServer({ config });
    try {
      const layout = await buildLayout(`${work}/layout`);
      const ref = `docker://${server.host}/release/app:v1`;
      await run("skopeo", ["copy", TLS, `oci:${layout.dir}:amd64`, ref]);
      await assert.rejects(
        run("skopeo", ["copy", TLS, `oci:${layout.dir}:arm64`, ref]),
        /immutable|denied/i,
      );
      await assert.rejects(
        run("skopeo", ["delete", "--tls-verify=false", ref]),
        /denied|immutable/i,
      );
      const inspected = JSON.parse(await run("skopeo", ["inspect", "--tls-verify=false", ref]));
      assert.equal(inspected.Digest, layout.refs.amd64);

      for (const arch of ["amd64", "arm64"]) {
        const tag = `docker://${server.host}/ci/app:${arch}`;
        await run("skopeo", ["copy", TLS, `oci:${layout.dir}:${arch}`, tag]);
        await new Promise((r) => setTimeout(r, 20));
      }
      const tags = JSON.parse(
        await run("skopeo", ["list-tags", "--tls-verify=false", `docker://${server.host}/ci/app`]),
      );
      assert.deepEqual(tags.Tags, ["arm64"]);
    } finally {
      await server.close();
      await Deno.remove(work, { recursive: true });
    }
  },
});
