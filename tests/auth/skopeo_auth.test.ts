/**
 * E2E: skopeo (containers/image) against berth with Basic and with Bearer token auth: login,
 * copy with credentials, refusals, and anonymous pull where the policy allows it.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Config } from "../../src/config.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { run, skipWithout } from "../helpers/tools.ts";
import { POLICY, USERS, writeHtpasswd, writeOciLayout } from "./fixtures.ts";

const TLS = ["--tls-verify=false"];
const DEST = ["--dest-tls-verify=false"];
const SRC = ["--src-tls-verify=false"];

/** skopeo with its own credentials file, so no login leaks between tests. */
function skopeo(dir: string, args: string[]): Promise<string> {
  return run("skopeo", args, { env: { REGISTRY_AUTH_FILE: `${dir}/auth.json` } });
}

async function fails(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (error: Error) => {
    assert.match(error.message, pattern);
    return true;
  });
}

async function withRegistry(
  mode: "basic" | "token",
  body: (server: TestServer, dir: string, layout: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "berth-skopeo-auth-" });
  const auth: Config["auth"] = {
    htpasswd: { realm: "berth-test", path: await writeHtpasswd(dir) },
    policy: structuredClone(POLICY),
    ...(mode === "token" && { token: { service: "berth-test", issuer: "berth" } }),
  };
  const server = await startServer({ config: { auth } });
  try {
    await Deno.writeTextFile(`${dir}/auth.json`, "{}");
    await writeOciLayout(`${dir}/layout`);
    await body(server, dir, `oci:${dir}/layout:latest`);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
}

for (const mode of ["basic", "token"] as const) {
  Deno.test({
    name: `skopeo ${mode} auth: login, copy with credentials, refusals, anonymous pull`,
    ignore: skipWithout("skopeo", "htpasswd"),
    fn: () =>
      withRegistry(mode, async (server, dir, layout) => {
        const host = server.host;
        await fails(
          skopeo(dir, ["login", ...TLS, "-u", "bob", "-p", "wrong", host]),
          /invalid username\/password|unauthorized/i,
        );
        await skopeo(dir, ["login", ...TLS, "-u", "bob", "-p", USERS.bob, host]);
        await skopeo(dir, ["copy", ...DEST, layout, `docker://${host}/team/app:1`]);
        await skopeo(dir, ["logout", host]);

        const bob = `bob:${USERS.bob}`;
        await fails(
          skopeo(dir, [
            "copy",
            ...DEST,
            "--dest-creds",
            bob,
            layout,
            `docker://${host}/secret/x:1`,
          ]),
          /denied|forbidden|unauthorized|403/i,
        );
        await fails(
          skopeo(dir, [
            "copy",
            ...DEST,
            "--dest-creds",
            `bob:nope`,
            layout,
            `docker://${host}/team/x:1`,
          ]),
          /unauthorized|401|invalid/i,
        );
        await skopeo(dir, [
          "copy",
          ...DEST,
          "--dest-creds",
          `alice:${USERS.alice}`,
          layout,
          `docker://${host}/public/base:1`,
        ]);

        await skopeo(dir, [
          "copy",
          ...SRC,
          "--src-creds",
          bob,
          `docker://${host}/team/app:1`,
          `dir:${dir}/pulled`,
        ]);
        const pulledManifest = await Deno.readTextFile(`${dir}/pulled/manifest.json`);
        assert.match(pulledManifest, /vnd\.oci\.image\.manifest\.v1\+json/);

        await skopeo(dir, ["copy", ...SRC, `docker://${host}/public/base:1`, `dir:${dir}/anon`]);
        await fails(
          skopeo(dir, ["copy", ...SRC, `docker://${host}/team/app:1`, `dir:${dir}/anon2`]),
          /unauthorized|authentication required|401/i,
        );
        await fails(
          skopeo(dir, ["copy", ...DEST, layout, `docker://${host}/public/base:2`]),
          /unauthorized|authentication required|401/i,
        );
      }),
  });
}
