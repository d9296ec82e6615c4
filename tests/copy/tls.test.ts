/**
 * `berth copy` over HTTPS: a CA from `--dest-cert-dir` (verified connections), no verification
 * with `--src-tls-verify=false` / `--dest-tls-verify=false` (against berth and distribution), and
 * an unknown CA refused.
 *
 * @module
 */
import assert from "node:assert/strict";
import { writeOciLayout, writeServerCert } from "../auth/fixtures.ts";
import { startDistribution } from "../helpers/images.ts";
import { spawnServer } from "../helpers/server.ts";
import { skipWithout } from "../helpers/tools.ts";
import { refsOf } from "../transports/layouts.ts";
import { berth } from "./cli.ts";

Deno.test({
  name: "copy(tls): a CA directory verifies the registry; tls-verify=false skips verification",
  ignore: skipWithout("openssl"),
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "berth-copy-tls-" });
    const { ca, cert, key } = await writeServerCert(dir);
    await Deno.mkdir(`${dir}/certs`);
    await Deno.copyFile(ca, `${dir}/certs/ca.crt`);
    await Deno.mkdir(`${dir}/data`);
    const server = await spawnServer({
      dataDir: `${dir}/data`,
      args: ["--tls-cert", cert, "--tls-key", key],
    });
    try {
      const digest = await writeOciLayout(`${dir}/layout`);
      const target = `docker://${server.host}/tls/app:v1`;
      const refused = await berth(["copy", `oci:${dir}/layout:latest`, target]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /unreachable/);
      const verified = await berth([
        "copy",
        "--dest-cert-dir",
        `${dir}/certs`,
        "--json",
        `oci:${dir}/layout:latest`,
        target,
      ]);
      assert.equal(verified.code, 0, verified.stderr);
      assert.equal(JSON.parse(verified.stdout).digest, digest);
      const unverified = await berth([
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        target,
        `docker://${server.host}/tls/copy:v2`,
      ]);
      assert.equal(unverified.code, 0, unverified.stderr);
      const pulled = await berth([
        "copy",
        "--src-tls-verify=false",
        `docker://${server.host}/tls/copy:v2`,
        `oci:${dir}/back:v2`,
      ]);
      assert.equal(pulled.code, 0, pulled.stderr);
      assert.equal((await refsOf(`${dir}/back`)).v2, digest);
      const pushed = await berth([
        "copy",
        "--dest-tls-verify=false",
        `oci:${dir}/back:v2`,
        `docker://${server.host}/tls/pushed:v3`,
      ]);
      assert.equal(pushed.code, 0, pushed.stderr);
    } finally {
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "copy(tls): tls-verify=false reaches distribution over TLS on its port (plain HTTP answered 400 there)",
  ignore: skipWithout("openssl", "docker-registry"),
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "berth-copy-tls-" });
    const { cert, key } = await writeServerCert(dir);
    const registry = await startDistribution(`${dir}/data`, { tls: { cert, key } });
    try {
      const digest = await writeOciLayout(`${dir}/layout`);
      const target = `docker://${registry.host}/tls/app:v1`;
      const pushed = await berth([
        "copy",
        "--dest-tls-verify=false",
        `oci:${dir}/layout:latest`,
        target,
      ]);
      assert.equal(pushed.code, 0, pushed.stderr);
      const pulled = await berth(["copy", "--src-tls-verify=false", target, `oci:${dir}/back:v1`]);
      assert.equal(pulled.code, 0, pulled.stderr);
      assert.equal((await refsOf(`${dir}/back`)).v1, digest);
    } finally {
      await registry.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
