/**
 * What an operator sees when `serve`, `gc` or `health` cannot do their job: one line naming the
 * cause and the setting or address, exit 1, no stack trace; and what a successful start tells.
 *
 * @module
 */
import assert from "node:assert/strict";
import { berthCommand, spawnServer } from "../helpers/server.ts";
import { skipWithout } from "../helpers/tools.ts";
import { writeSelfSignedCert } from "../auth/fixtures.ts";
import { withTempDir } from "../helpers/temp.ts";

/** Run the berth command line to completion. */
async function berth(args: string[], env: Record<string, string> = {}) {
  const [cmd, ...pre] = berthCommand();
  const { code, stdout, stderr } = await new Deno.Command(cmd!, {
    args: [...pre, ...args],
    env,
    stdin: "null",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code, stdout: decode(stdout), stderr: decode(stderr) };
}

/** Assert a failed start: exit 1 and exactly one line on stderr matching `pattern`. */
function assertOneLine(result: { code: number; stderr: string }, pattern: RegExp): void {
  assert.equal(result.code, 1, result.stderr);
  const lines = result.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `expected one line, got:\n${result.stderr}`);
  assert.match(lines[0]!, pattern);
}

Deno.test("startup: a port in use is one line naming the address and the setting", async () => {
  await withTempDir("berth-startup-", async (dir) => {
    const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const { port } = taken.addr;
      // A config with keys berth ignores: their warnings do not bury the cause.
      await Deno.writeTextFile(
        `${dir}/config.yml`,
        "version: 0.1\nstorage:\n  cache: {blobdescriptor: inmemory}\nhttp:\n  headers: {X-Content-Type-Options: [nosniff]}\n",
      );
      const result = await berth(
        ["serve", `${dir}/config.yml`, "--addr", `127.0.0.1:${port}`, "--data", `${dir}/data`],
      );
      assertOneLine(
        result,
        new RegExp(
          `^berth serve: http\\.addr \\(--addr\\) 127\\.0\\.0\\.1:${port}: address already in use$`,
        ),
      );
    } finally {
      taken.close();
    }
  });
});

Deno.test({
  name: "startup: a TLS certificate and key that do not match are one line naming http.tls",
  ignore: skipWithout("openssl"),
  fn: () =>
    withTempDir("berth-startup-", async (dir) => {
      await Deno.mkdir(`${dir}/a`);
      await Deno.mkdir(`${dir}/b`);
      const a = await writeSelfSignedCert(`${dir}/a`, { ec: true });
      const b = await writeSelfSignedCert(`${dir}/b`, { ec: true });
      const args = ["serve", "--addr", "127.0.0.1:0", "--data", `${dir}/data`];
      const result = await berth([...args, "--tls-cert", a.cert, "--tls-key", b.key]);
      assertOneLine(result, /^berth serve: http\.tls: the certificate and the key do not match$/);
      const missing = await berth([...args, "--tls-cert", a.cert, "--tls-key", `${dir}/none`]);
      assertOneLine(missing, /^berth serve: http\.tls\.key \(--tls-key\) .*\/none: /);
    }),
});

Deno.test("startup: a bad htpasswd line is one line naming the setting and the line", async () => {
  await withTempDir("berth-startup-", async (dir) => {
    await Deno.writeTextFile(`${dir}/htpasswd`, "# users\nalice:plaintext\n");
    const result = await berth([
      "serve",
      "--addr",
      "127.0.0.1:0",
      "--data",
      `${dir}/data`,
      "--htpasswd",
      `${dir}/htpasswd`,
    ]);
    assertOneLine(
      result,
      /^berth serve: auth\.htpasswd\.path: .*htpasswd: line 2: /,
    );
  });
});

Deno.test("startup: an invalid or unwritable data directory is refused, naming the setting", async () => {
  await withTempDir("berth-startup-", async (dir) => {
    await Deno.writeTextFile(`${dir}/file`, "not a directory");
    const file = await berth(["serve", "--addr", "127.0.0.1:0", "--data", `${dir}/file`]);
    assertOneLine(
      file,
      /^berth serve: storage\.filesystem\.rootdirectory \(--data\) .*\/file: not a directory$/,
    );
    const under = await berth(["serve", "--addr", "127.0.0.1:0", "--data", `${dir}/file/data`]);
    assertOneLine(under, /rootdirectory \(--data\) .*\/file\/data: cannot create it: /);
    // A tree berth cannot write into (as root, a permission bit would not stop the write).
    await Deno.mkdir(`${dir}/data/docker/registry`, { recursive: true });
    await Deno.writeTextFile(`${dir}/data/docker/registry/v2`, "not a directory");
    const tree = await berth(["serve", "--addr", "127.0.0.1:0", "--data", `${dir}/data`]);
    assertOneLine(
      tree,
      /^berth serve: storage\.filesystem\.rootdirectory \(--data\) .*\/data: not writable: /,
    );
    if (Deno.uid() !== 0) {
      await Deno.mkdir(`${dir}/locked`, { mode: 0o555 });
      const locked = await berth(["serve", "--addr", "127.0.0.1:0", "--data", `${dir}/locked`]);
      assertOneLine(locked, /rootdirectory \(--data\) .*\/locked: (not writable|cannot create)/);
    }
  });
});

Deno.test("startup: gc on a missing data directory is one line naming --data", async () => {
  await withTempDir("berth-startup-", async (dir) => {
    const result = await berth(["gc", "--data", `${dir}/none`]);
    assertOneLine(
      result,
      /^berth gc: data directory .*\/none \(--data, REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY\): does not exist$/,
    );
  });
});

Deno.test("startup: an out-of-range setting is one line naming the key", async () => {
  const result = await berth(["serve", "--addr", "127.0.0.1:0", "--data", "/nonexistent"], {
    REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_INTERVAL: "100000h",
  });
  assertOneLine(result, /^berth serve: storage\.maintenance\.uploadpurging\.interval: /);
});

Deno.test("startup: the listening line states address, storage, auth, modes and limits", async () => {
  await withTempDir("berth-startup-", async (dir) => {
    const [cmd, ...pre] = berthCommand();
    const child = new Deno.Command(cmd!, {
      args: [...pre, "serve", "--addr", "127.0.0.1:0", "--data", dir, "--read-only"],
      env: { REGISTRY_STORAGE_DELETE_ENABLED: "false" },
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    try {
      while (!text.includes("\n")) {
        const { done, value } = await lines.read();
        if (done) break;
        text += value;
      }
    } finally {
      child.kill("SIGTERM");
      await lines.cancel();
      await child.status;
    }
    const record = JSON.parse(text.split("\n")[0]!);
    assert.equal(record.msg, "listening");
    assert.match(record.addr, /^127\.0\.0\.1:\d+$/);
    assert.equal(record.storage, `filesystem:${dir}`);
    assert.equal(record.auth, "none");
    assert.equal(record.readOnly, true);
    assert.equal(record.deletes, false);
    assert.equal(record.tls, false);
    assert.equal(record.limits.maxManifestBytes, 4 * 1024 * 1024);
    assert.equal(record.limits.manifestCacheBytes, 64 * 1024 * 1024);
    assert.equal(record.limits.maxUploadsPerClient, 64);
  });
});

/** A port `fetch` refuses (browsers' bad ports) that is free here, or `undefined`. */
function freeBlockedPort(): number | undefined {
  for (const port of [6000, 6665, 6666, 6667, 6668, 6669, 6697, 10080]) {
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
      return port;
    } catch { /* taken */ }
  }
  return undefined;
}

Deno.test("startup: berth health reaches a server on a port fetch refuses (6000)", async () => {
  const port = freeBlockedPort();
  if (port === undefined) {
    if (Deno.env.get("CI") === "true") throw new Error("no blocked port is free");
    console.warn("skipped: every port fetch refuses is taken here");
    return;
  }
  await assert.rejects(fetch(`http://127.0.0.1:${port}/healthz`), "fetch refuses the port");
  await withTempDir("berth-startup-", async (dir) => {
    const server = await spawnServer({ dataDir: dir, args: ["--addr", `127.0.0.1:${port}`] });
    try {
      const byUrl = await berth(["health", `http://127.0.0.1:${port}`]);
      assert.equal(byUrl.code, 0, byUrl.stderr);
      assert.equal(JSON.parse(byUrl.stdout).status, "ok");
      const byEnv = await berth(["health"], { REGISTRY_HTTP_ADDR: `:${port}` });
      assert.equal(byEnv.code, 0, byEnv.stderr);
    } finally {
      await server.stop("SIGTERM");
    }
  });
});
