/**
 * `berth serve` flags and `REGISTRY_*` variables of auth, TLS and limits.
 *
 * @module
 */
import assert from "node:assert/strict";
import { serveConfig } from "../../src/commands/serve.ts";

const noEnv = {};

Deno.test("serve flags: --htpasswd, --realm, --token-* and --auth-policy build config.auth", async () => {
  const dir = await Deno.makeTempDir({ prefix: "berth-flags-" });
  try {
    await Deno.writeTextFile(
      `${dir}/policy.json`,
      JSON.stringify({ rules: [{ repositories: ["a/*"], users: ["*"], actions: ["*"] }] }),
    );
    const { config } = await serveConfig([
      "--htpasswd",
      `${dir}/htpasswd`,
      "--realm=Berth Registry",
      "--token-service",
      "svc",
      "--token-issuer",
      "iss",
      "--auth-policy",
      `${dir}/policy.json`,
      "--max-uploads",
      "3",
    ], noEnv);
    assert.deepEqual(config.auth, {
      htpasswd: { path: `${dir}/htpasswd`, realm: "Berth Registry" },
      token: { service: "svc", issuer: "iss" },
      policy: {
        rules: [{ repositories: ["a/*"], users: ["*"], actions: ["pull", "push", "delete"] }],
      },
    });
    assert.deepEqual(config.limits, { maxUploadsPerClient: 3 });
    await Deno.writeTextFile(
      `${dir}/bad.json`,
      JSON.stringify({ rules: [{ repositories: ["a"], actions: ["steal"] }] }),
    );
    await assert.rejects(
      () => serveConfig(["--auth-policy", `${dir}/bad.json`], noEnv),
      /unknown "steal"/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serve flags: TLS needs both files; distribution's variables are read", async () => {
  await assert.rejects(
    () => serveConfig(["--tls-cert", "c.pem"], noEnv),
    /both --tls-cert and --tls-key/,
  );
  const env: Record<string, string> = {
    REGISTRY_AUTH_HTPASSWD_PATH: "/etc/berth/htpasswd",
    REGISTRY_AUTH_HTPASSWD_REALM: "Registry Realm",
    REGISTRY_HTTP_TLS_CERTIFICATE: "/c.pem",
    REGISTRY_HTTP_TLS_KEY: "/k.pem",
  };
  const { config } = await serveConfig([], env);
  assert.deepEqual(config.auth?.htpasswd, { path: "/etc/berth/htpasswd", realm: "Registry Realm" });
  assert.deepEqual(config.tls, { certificate: "/c.pem", key: "/k.pem" });
  await assert.rejects(() => serveConfig(["--max-body", "-5"], noEnv), /positive integer/);
});
