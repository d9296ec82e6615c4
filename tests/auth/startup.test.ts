/**
 * Auth at startup: the warning about a realm taken from the Host header, and Debian's stock
 * config (htpasswd `path` a directory) refused alike by `config check` and `serve` in one line.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createPublicKey } from "node:crypto";
import { createApp } from "../../src/app.ts";
import { makeConfig } from "../../src/config.ts";
import { withTempDir } from "../helpers/temp.ts";
import { run } from "../helpers/tools.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** The warnings createApp logs for an auth config. */
async function startupWarnings(dir: string, realm?: string): Promise<string[]> {
  await run("openssl", ["genrsa", "-out", `${dir}/rsa.pem`, "2048"]);
  const jwk = createPublicKey(await Deno.readTextFile(`${dir}/rsa.pem`)).export({ format: "jwk" });
  await Deno.writeTextFile(`${dir}/jwks.json`, JSON.stringify({ keys: [jwk] }));
  const records: Record<string, unknown>[] = [];
  const app = createApp(
    makeConfig({
      storage: "memory",
      auth: {
        token: {
          service: "svc",
          issuer: "iss",
          jwks: `${dir}/jwks.json`,
          ...(realm !== undefined && { realm }),
        },
      },
    }),
    { log: (record) => void records.push(record), logError: () => {} },
  );
  await app.close();
  return records.filter((r) => r.level === "warn").map((r) => String(r.msg));
}

Deno.test("startup: token auth without an explicit realm warns that the Host header names it", async () => {
  await withTempDir("berth-startup-", async (dir) => {
    const warnings = await startupWarnings(dir);
    assert.ok(warnings.some((w) => w.startsWith("auth.token.realm is not set")), String(warnings));
    const explicit = await startupWarnings(dir, "https://auth.example.test/token");
    assert.ok(!explicit.some((w) => w.includes("auth.token.realm")), String(explicit));
  });
});

/** Run berth's command line; stdout, stderr and the exit code. */
async function berth(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-read", "--allow-write", "--allow-env", MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

Deno.test("startup: an htpasswd path that is a directory (Debian's stock config) is refused by config check and serve alike", async () => {
  await withTempDir("berth-startup-", async (dir) => {
    // Debian's /etc/docker/registry/config.yml, with the directories moved into `dir`.
    await Deno.writeTextFile(
      `${dir}/config.yml`,
      [
        "version: 0.1",
        "log:",
        "  fields:",
        "    service: registry",
        "storage:",
        "  cache:",
        "    blobdescriptor: inmemory",
        "  filesystem:",
        `    rootdirectory: ${dir}/data`,
        "  delete:",
        "    enabled: true",
        "http:",
        "  addr: 127.0.0.1:0",
        "  headers:",
        "    X-Content-Type-Options: [nosniff]",
        "auth:",
        "  htpasswd:",
        "    realm: basic-realm",
        `    path: ${dir}`,
        "health:",
        "  storagedriver:",
        "    enabled: true",
        "    interval: 10s",
        "    threshold: 3",
        "",
      ].join("\n"),
    );
    const expected = `auth.htpasswd.path: ${dir} is not a file`;
    for (const args of [["config", "check", `${dir}/config.yml`], ["serve", `${dir}/config.yml`]]) {
      const { code, stderr } = await berth(args);
      assert.equal(code, 1, args.join(" "));
      const errors = stderr.split("\n").filter((l) => l !== "" && !l.includes('"level":"warn"'));
      const fatal = errors.filter((l) => !l.startsWith("warning: "));
      assert.equal(fatal.length, 1, `one line, no stack trace: ${stderr}`);
      assert.ok(fatal[0]!.includes(expected), fatal[0]);
    }
  });
});

Deno.test("startup: config check prints the realm warning serve would log", async () => {
  await withTempDir("berth-startup-", async (dir) => {
    await startupWarnings(dir);
    const yaml = (realm: string) =>
      [
        "version: 0.1",
        "auth:",
        "  token:",
        "    service: svc",
        "    issuer: iss",
        `    jwks: ${dir}/jwks.json`,
        ...(realm ? [`    realm: ${realm}`] : []),
        "",
      ].join("\n");
    await Deno.writeTextFile(`${dir}/implicit.yml`, yaml(""));
    await Deno.writeTextFile(`${dir}/explicit.yml`, yaml("https://auth.example.test/token"));
    const implicit = await berth(["config", "check", `${dir}/implicit.yml`]);
    assert.equal(implicit.code, 0, implicit.stderr);
    assert.match(implicit.stderr, /warning: auth\.token\.realm is not set/);
    const explicit = await berth(["config", "check", `${dir}/explicit.yml`]);
    assert.equal(explicit.code, 0, explicit.stderr);
    assert.doesNotMatch(explicit.stderr, /auth\.token\.realm/);
  });
});
