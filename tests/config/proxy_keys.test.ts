/** The `proxy` section: distribution's single upstream, berth's mirrors, the environment. */
import assert from "node:assert/strict";
import { ConfigError } from "../../src/config_file.ts";
import { parseConfig } from "../../src/config_yaml.ts";
import { Mirrors } from "../../src/proxy/mirrors.ts";

Deno.test("config: proxy.remoteurl makes the whole registry a cache of one upstream", () => {
  const { config } = parseConfig(
    "version: 0.1\nproxy:\n  remoteurl: https://registry-1.docker.io/\n  username: u\n  password: p\n  ttl: 168h\n",
  );
  assert.deepEqual(config.proxy?.mirrors, [{
    prefix: "",
    remoteUrl: "https://registry-1.docker.io",
    username: "u",
    password: "p",
    ttlMs: 168 * 3_600_000,
  }]);
  const mirrors = new Mirrors(config.proxy!);
  try {
    // Docker Hub: single-component names are library/ images.
    assert.equal(mirrors.route("alpine")?.upstream, "library/alpine");
    assert.equal(mirrors.route("team/app")?.upstream, "team/app");
  } finally {
    mirrors.close();
  }
});

Deno.test("config: REGISTRY_PROXY_* variables set distribution's keys", () => {
  const { config } = parseConfig("", {
    env: { REGISTRY_PROXY_REMOTEURL: "http://127.0.0.1:5000", REGISTRY_PROXY_USERNAME: "me" },
  });
  assert.equal(config.proxy?.mirrors[0]?.remoteUrl, "http://127.0.0.1:5000");
  assert.equal(config.proxy?.mirrors[0]?.username, "me");
});

Deno.test("config: proxy.mirrors routes prefixes; other repositories stay local", () => {
  const { config } = parseConfig(
    [
      "version: 0.1",
      "proxy:",
      "  revalidate: 5m",
      "  mirrors:",
      "    - prefix: hub",
      "      remoteurl: https://registry-1.docker.io",
      "    - prefix: mirrors/ghcr",
      "      remoteURL: https://ghcr.io",
      "      library: false",
      "",
    ].join("\n"),
  );
  assert.equal(config.proxy?.revalidateMs, 300_000);
  const mirrors = new Mirrors(config.proxy!);
  try {
    assert.deepEqual(
      {
        label: mirrors.route("hub/alpine")?.mirror.label,
        up: mirrors.route("hub/alpine")?.upstream,
      },
      { label: "hub", up: "library/alpine" },
    );
    assert.equal(mirrors.route("mirrors/ghcr/org/tool")?.upstream, "org/tool");
    assert.equal(mirrors.route("mirrors/ghcr/tool")?.upstream, "tool");
    assert.equal(mirrors.route("hubble/app"), undefined);
    assert.equal(mirrors.route("local/app"), undefined);
  } finally {
    mirrors.close();
  }
});

Deno.test("config: bad proxy sections are refused with the key named", () => {
  const cases: [string, RegExp][] = [
    ["proxy:\n  remoteurl: ftp://x\n", /proxy\.remoteurl/],
    ["proxy:\n  mirrors:\n    - remoteurl: https://x\n", /proxy\.mirrors\.0\.prefix/],
    ["proxy:\n  mirrors:\n    - prefix: a\n      remoteurl: https://x\n      bogus: 1\n", /bogus/],
    [
      "proxy:\n  remoteurl: https://x\n  mirrors:\n    - prefix: a\n      remoteurl: https://y\n",
      /not both/,
    ],
    [
      "proxy:\n  mirrors:\n    - prefix: a\n      remoteurl: https://x\n    - prefix: a/b\n      remoteurl: https://y\n",
      /overlaps/,
    ],
    ["proxy:\n  mirrors: hub\n", /expected a list/],
  ];
  for (const [yaml, message] of cases) {
    assert.throws(() => parseConfig(`version: 0.1\n${yaml}`), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, message);
      return true;
    });
  }
});

Deno.test("config check: prints the proxy settings without the upstream password", async () => {
  const dir = await Deno.makeTempDir({ prefix: "berth-proxy-check-" });
  try {
    await Deno.writeTextFile(
      `${dir}/config.yml`,
      "version: 0.1\nproxy:\n  remoteurl: https://up.example\n  username: u\n  password: hunter2\n",
    );
    const main = new URL("../../main.ts", import.meta.url).pathname;
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", main, "config", "check", `${dir}/config.yml`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(output.stdout);
    assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
    assert.match(out, /"remoteUrl": "https:\/\/up.example"/);
    assert.doesNotMatch(out, /hunter2/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
