import assert from "node:assert/strict";
import { berthCommand, spawnServer } from "../helpers/server.ts";

const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).pathname;

/** Run the berth command line (the bundle under BERTH_TEST_COMMAND) to completion. */
async function berth(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const [cmd, ...pre] = berthCommand();
  const { code, stdout, stderr } = await new Deno.Command(cmd!, {
    args: [...pre, ...args],
    env,
    stdin: "null",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code, stdout: decode(stdout), stderr: decode(stderr) };
}

Deno.test("cli: version prints berth's and Deno's versions, exit 0", async () => {
  const { code, stdout } = await berth(["version"]);
  assert.equal(code, 0);
  assert.match(stdout, /^berth \d+\.\d+\.\d+ \(deno \d+\.\d+\.\d+, v8 .+, typescript .+\)\n$/);
  assert.equal((await berth(["--version"])).stdout, stdout);
});

Deno.test("cli: help lists every command and the exit codes, exit 0", async () => {
  for (const args of [["help"], ["--help"], ["-h"]]) {
    const { code, stdout } = await berth(args);
    assert.equal(code, 0);
    for (const command of ["serve", "version", "config", "help"]) {
      assert.match(stdout, new RegExp(`^  ${command} `, "m"));
    }
    assert.match(stdout, /Exit codes: 0 success, 1 failure.*, 2 usage error/);
  }
  const serve = await berth(["help", "serve"]);
  assert.equal(serve.code, 0);
  assert.match(serve.stdout, /^Usage: berth serve \[CONFIG_FILE\]/);
  assert.match(serve.stdout, /--config FILE/);
  assert.equal((await berth(["serve", "--help"])).stdout, serve.stdout);
});

Deno.test("cli: an unknown command or flag is a usage error, exit 2", async () => {
  const unknown = await berth(["frobnicate"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command "frobnicate"/);
  const flag = await berth(["serve", "--frobnicate"]);
  assert.equal(flag.code, 2);
  assert.match(flag.stderr, /unknown argument --frobnicate/);
  assert.equal((await berth(["help", "frobnicate"])).code, 2);
  assert.equal((await berth(["serve", "--addr", "nowhere"])).code, 2);
  assert.equal((await berth(["config"])).code, 2);
  assert.equal((await berth(["version", "extra"])).code, 2);
});

Deno.test("cli: config check takes Debian's stock config once its htpasswd path names a file", async () => {
  // As shipped, its htpasswd path is a directory: refused in one line, as `serve` refuses it.
  const stock = await berth(["config", "check", fixture("debian_config.yml")]);
  assert.equal(stock.code, 1);
  assert.match(stock.stderr, /auth\.htpasswd\.path: \/etc\/docker\/registry is not a file/);
  const dir = await Deno.makeTempDir({ prefix: "berth-cli-" });
  try {
    await Deno.writeTextFile(`${dir}/htpasswd`, "");
    const { code, stdout, stderr } = await berth(
      ["config", "check", fixture("debian_config.yml")],
      {
        REGISTRY_STORAGE_DELETE_ENABLED: "false",
        REGISTRY_AUTH_HTPASSWD_PATH: `${dir}/htpasswd`,
      },
    );
    assert.equal(code, 0, stderr);
    const config = JSON.parse(stdout);
    assert.equal(config.dataDir, "/var/lib/docker-registry");
    assert.equal(config.deleteEnabled, false);
    assert.deepEqual(config.auth.htpasswd, { realm: "basic-realm", path: `${dir}/htpasswd` });
    assert.match(stderr, /warning: storage\.cache: ignored/);
    assert.match(stderr, /: ok\n$/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: config check names the bad key and exits 1", async () => {
  const dir = await Deno.makeTempDir({ prefix: "berth-cli-" });
  try {
    await Deno.writeTextFile(`${dir}/bad.yml`, "version: 0.1\nhttp:\n  adress: :5000\n");
    const bad = await berth(["config", "check", `${dir}/bad.yml`]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /http\.adress: unknown key/);
    const missing = await berth(["config", "check", `${dir}/none.yml`]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot read config file/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: serve starts unchanged on a distribution config with htpasswd and delete", async () => {
  const dir = await Deno.makeTempDir({ prefix: "berth-cli-" });
  const htpasswd = `${dir}/htpasswd`;
  await Deno.writeTextFile(
    htpasswd,
    "tester:$2y$04$poFVpyXbKRFu8t2.oMyobeRMCDV4llxCDKNvzHTDUZA9va2XmRF7m\n",
  );
  // Debian's stock file, with the htpasswd path pointing at a real file.
  const text = Deno.readTextFileSync(fixture("debian_config.yml"))
    .replace("path: /etc/docker/registry", `path: ${htpasswd}`)
    .replace("enabled: true\nhttp:", "enabled: false\nhttp:");
  assert.match(text, /delete:\n {4}enabled: false/);
  await Deno.writeTextFile(`${dir}/config.yml`, text);
  // spawnServer adds --addr and --data, which override the file like any flag.
  const server = await spawnServer({
    dataDir: `${dir}/data`,
    args: [`${dir}/config.yml`],
  });
  try {
    const health = await fetch(`${server.url}/healthz`);
    assert.equal(health.status, 200, await health.text());
    const base = await fetch(`${server.url}/v2/`);
    await base.body?.cancel();
    // 200 without auth enforcement, 401 with it: both mean the registry is up.
    assert.ok([200, 401].includes(base.status), `GET /v2/ answered ${base.status}`);
  } finally {
    await server.stop("SIGTERM");
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: serve refuses a config with an unknown key, naming it, exit 1", async () => {
  const dir = await Deno.makeTempDir({ prefix: "berth-cli-" });
  try {
    await Deno.writeTextFile(`${dir}/c.yml`, "version: 0.1\nstorage:\n  delete: {enable: true}\n");
    const { code, stderr } = await berth(["serve", "--config", `${dir}/c.yml`]);
    assert.equal(code, 1);
    assert.match(stderr, /storage\.delete\.enable: unknown key/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: health exits 0 against a healthy server and 1 when none answers", async () => {
  const dir = await Deno.makeTempDir({ prefix: "berth-cli-" });
  const server = await spawnServer({ dataDir: dir });
  try {
    const healthy = await berth(["health", server.url]);
    assert.equal(healthy.code, 0, healthy.stderr);
    assert.equal(JSON.parse(healthy.stdout).status, "ok");
    const viaEnv = await berth(["health"], { REGISTRY_HTTP_ADDR: `:${new URL(server.url).port}` });
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
  } finally {
    await server.stop("SIGTERM");
    await Deno.remove(dir, { recursive: true });
  }
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  const down = await berth(["health", `http://127.0.0.1:${port}`]);
  assert.equal(down.code, 1);
  assert.match(down.stderr, /berth health: /);
});
