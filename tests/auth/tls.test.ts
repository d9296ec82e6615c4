/**
 * TLS from `--tls-cert`/`--tls-key`: a self-signed certificate made at test time; fetch with the
 * certificate as CA, skopeo with `--dest-cert-dir`, and refusal without it.
 *
 * @module
 */
import assert from "node:assert/strict";
import { spawnServer } from "../helpers/server.ts";
import { run, skipWithout } from "../helpers/tools.ts";
import { writeOciLayout, writeServerCert } from "./fixtures.ts";

Deno.test({
  name: "tls: berth serves HTTPS from --tls-cert/--tls-key; skopeo pushes with the CA",
  ignore: skipWithout("openssl", "skopeo"),
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "berth-tls-" });
    const { ca, cert, key } = await writeServerCert(dir);
    await Deno.mkdir(`${dir}/certs`);
    await Deno.copyFile(ca, `${dir}/certs/ca.crt`);
    await Deno.mkdir(`${dir}/data`);
    const server = await spawnServer({
      dataDir: `${dir}/data`,
      args: ["--tls-cert", cert, "--tls-key", key],
    });
    const client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(ca)] });
    try {
      const url = `https://${server.host}`;
      const response = await fetch(`${url}/v2/`, { client });
      assert.equal(response.status, 200);
      assert.equal(await response.text(), "{}");
      await assert.rejects(fetch(`${url}/v2/`), "an unknown CA is refused");

      await writeOciLayout(`${dir}/layout`);
      const env = { REGISTRY_AUTH_FILE: `${dir}/auth.json` };
      await Deno.writeTextFile(`${dir}/auth.json`, "{}");
      await run("skopeo", [
        "copy",
        "--dest-cert-dir",
        `${dir}/certs`,
        `oci:${dir}/layout:latest`,
        `docker://${server.host}/tls/app:1`,
      ], { env });
      await assert.rejects(
        run("skopeo", ["inspect", `docker://${server.host}/tls/app:1`], { env }),
        /certificate|x509/i,
      );
      const raw = await run("skopeo", [
        "inspect",
        "--raw",
        "--cert-dir",
        `${dir}/certs`,
        `docker://${server.host}/tls/app:1`,
      ], { env });
      assert.match(raw, /"schemaVersion":2/);
    } finally {
      client.close();
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
