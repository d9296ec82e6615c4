/**
 * E2E: berth's token endpoint fronting distribution 2.8.2 (`docker-registry` with `auth.token`
 * trusting berth's signing certificate). skopeo follows distribution's Bearer challenge to berth,
 * so distribution itself checks berth's tokens: signature and `kid`, issuer, audience, expiry and
 * the `access` claim.
 *
 * @module
 */
import assert from "node:assert/strict";
import { freePort } from "../helpers/images.ts";
import { startServer } from "../helpers/server.ts";
import { run, skipWithout } from "../helpers/tools.ts";
import { POLICY, USERS, writeHtpasswd, writeOciLayout, writeSelfSignedCert } from "./fixtures.ts";

Deno.test({
  name: "distribution interop: docker-registry accepts berth's tokens, scope by scope",
  ignore: skipWithout("docker-registry", "skopeo", "openssl", "htpasswd"),
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "berth-dist-token-" });
    const { cert, key } = await writeSelfSignedCert(dir, { ec: true, cn: "berth token signer" });
    const berth = await startServer({
      config: {
        auth: {
          htpasswd: { realm: "berth", path: await writeHtpasswd(dir) },
          token: { service: "dist-test", issuer: "berth-issuer", signingkey: key },
          policy: structuredClone(POLICY),
        },
      },
    });
    const port = freePort();
    await Deno.writeTextFile(
      `${dir}/config.yml`,
      [
        "version: 0.1",
        "log: {level: error}",
        `storage: {filesystem: {rootdirectory: ${dir}/dist}, delete: {enabled: true}}`,
        `http: {addr: "127.0.0.1:${port}"}`,
        "auth:",
        "  token:",
        `    realm: ${berth.url}/auth/token`,
        "    service: dist-test",
        "    issuer: berth-issuer",
        `    rootcertbundle: ${cert}`,
        "",
      ].join("\n"),
    );
    const registry = new Deno.Command("docker-registry", {
      args: ["serve", `${dir}/config.yml`],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const host = `127.0.0.1:${port}`;
    const env = { REGISTRY_AUTH_FILE: `${dir}/auth.json` };
    const skopeo = (args: string[]) => run("skopeo", args, { env });
    try {
      let challenge = "";
      for (let attempt = 0; attempt < 200 && !challenge; attempt++) {
        try {
          const response = await fetch(`http://${host}/v2/`);
          await response.body?.cancel();
          challenge = response.headers.get("WWW-Authenticate") ?? "";
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
      assert.match(challenge, new RegExp(`^Bearer realm="${berth.url}/auth/token"`));
      await Deno.writeTextFile(`${dir}/auth.json`, "{}");
      await writeOciLayout(`${dir}/layout`);
      const layout = `oci:${dir}/layout:latest`;
      const bob = `bob:${USERS.bob}`;

      await skopeo([
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        bob,
        layout,
        `docker://${host}/team/app:1`,
      ]);
      const raw = await skopeo([
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        bob,
        `docker://${host}/team/app:1`,
      ]);
      assert.match(raw, /"schemaVersion":2/);
      await assert.rejects(
        skopeo([
          "copy",
          "--dest-tls-verify=false",
          "--dest-creds",
          bob,
          layout,
          `docker://${host}/secret/x:1`,
        ]),
        /unauthorized|denied|authentication required/i,
        "berth grants bob no push on secret/x, so distribution refuses",
      );
      await assert.rejects(
        skopeo(["inspect", "--raw", "--tls-verify=false", `docker://${host}/team/app:1`]),
        /unauthorized|denied|authentication required/i,
        "an anonymous token carries no pull on team/app",
      );
    } finally {
      try {
        registry.kill("SIGTERM");
      } catch { /* gone */ }
      await registry.status;
      await berth.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
