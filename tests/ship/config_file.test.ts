import assert from "node:assert/strict";
import { makeConfig } from "../../src/config.ts";
import { ConfigError, configToEnv, parseDuration } from "../../src/config_file.ts";
import { parseConfig } from "../../src/config_yaml.ts";

const fixture = (name: string) =>
  Deno.readTextFileSync(new URL(`./fixtures/${name}`, import.meta.url));

Deno.test("config: Debian's stock config.yml loads, ignored keys are warned about", () => {
  const { config, warnings } = parseConfig(fixture("debian_config.yml"));
  const { auth } = config;
  assert.equal(config.dataDir, "/var/lib/docker-registry");
  assert.equal(config.addr, ":5000");
  assert.equal(config.deleteEnabled, true);
  assert.deepEqual(auth, { htpasswd: { realm: "basic-realm", path: "/etc/docker/registry" } });
  for (const key of ["log.fields", "storage.cache", "http.headers", "health"]) {
    assert.ok(warnings.some((w) => w.startsWith(`${key}: ignored`)), `${key} in ${warnings}`);
  }
});

Deno.test("config: distribution's example config loads unchanged", () => {
  const { config } = parseConfig(fixture("distribution_example.yml"));
  const { auth, tls } = config;
  assert.equal(config.dataDir, "/var/lib/registry");
  assert.equal(config.addr, ":5000");
  assert.equal(auth, undefined);
  assert.equal(tls, undefined);
});

Deno.test("config: every supported key maps onto the config", () => {
  const { config } = parseConfig(fixture("full.yml"));
  const { auth, tls, ...rest } = config;
  assert.deepEqual(rest, {
    ...makeConfig(),
    logLevel: "debug",
    accessLog: false,
    dataDir: "/srv/registry",
    deleteEnabled: false,
    readOnly: true,
    uploadPurging: { enabled: true, ageMs: 9_000_000, intervalMs: 90_000, dryRun: true },
    addr: "127.0.0.1:5443",
    drainTimeoutMs: 45_000,
    maxListEntries: 50,
  });
  assert.deepEqual(tls, { certificate: "/etc/certs/registry.crt", key: "/etc/certs/registry.key" });
  assert.deepEqual(auth, {
    token: {
      realm: "https://auth.example/token",
      service: "registry.example",
      issuer: "auth.example",
      rootcertbundle: "/etc/certs/token.pem",
    },
  });
});

Deno.test("config: REGISTRY_* variables override the file, flags override both", () => {
  const env = {
    REGISTRY_STORAGE_DELETE_ENABLED: "false",
    REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: "/from/env",
    REGISTRY_HTTP_ADDR: "127.0.0.1:6000",
    REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED: "true",
    REGISTRY_LOG_LEVEL: "warn",
  };
  const { config } = parseConfig(fixture("debian_config.yml"), {
    env,
    flags: { addr: "127.0.0.1:7000" },
  });
  assert.equal(config.deleteEnabled, false);
  assert.equal(config.dataDir, "/from/env");
  assert.equal(config.addr, "127.0.0.1:7000");
  assert.equal(config.readOnly, true);
  assert.equal(config.logLevel, "warn");
});

Deno.test("config: REGISTRY_* variables work without a file, and may set a whole section", () => {
  const { config } = parseConfig("", {
    env: {
      REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING: "{enabled: false, age: 1h, interval: 10m}",
      REGISTRY_AUTH_HTPASSWD_REALM: "r",
      REGISTRY_AUTH_HTPASSWD_PATH: "/etc/htpasswd",
    },
  });
  assert.deepEqual(config.uploadPurging, {
    enabled: false,
    ageMs: 3_600_000,
    intervalMs: 600_000,
    dryRun: false,
  });
  assert.deepEqual(config.auth, { htpasswd: { realm: "r", path: "/etc/htpasswd" } });
});

Deno.test("config: an unrelated REGISTRY_ variable is a warning, not an error", () => {
  const { warnings } = parseConfig("", { env: { REGISTRY_PORT: "tcp://10.0.0.1:5000" } });
  assert.deepEqual(warnings, ["REGISTRY_PORT: ignoring unrecognized environment variable"]);
});

const refused: [string, string, RegExp][] = [
  [
    "an unknown key",
    "version: 0.1\nstorage:\n  filesystem:\n    rootdir: /x\n",
    /^storage\.filesystem\.rootdir: unknown key$/,
  ],
  [
    "a misspelt section",
    "version: 0.1\nstorag:\n  delete: {enabled: true}\n",
    /^storag: unknown key/,
  ],
  [
    "another storage driver",
    "version: 0.1\nstorage:\n  azure: {container: c}\n",
    /^storage\.azure: not supported/,
  ],
  [
    "the silly auth scheme",
    "version: 0.1\nauth:\n  silly: {realm: r}\n",
    /^auth\.silly: not supported/,
  ],
  [
    "a non-boolean",
    "version: 0.1\nstorage:\n  delete:\n    enabled: yes please\n",
    /^storage\.delete\.enabled: expected true or false/,
  ],
  [
    "a bad duration",
    "version: 0.1\nstorage:\n  maintenance:\n    uploadpurging: {age: 3 days}\n",
    /^storage\.maintenance\.uploadpurging\.age: expected a duration/,
  ],
  [
    "a bad level",
    "version: 0.1\nlog: {level: loud}\n",
    /^log\.level: expected error, warn, info or debug/,
  ],
  ["a bad address", "version: 0.1\nhttp: {addr: nowhere}\n", /^http\.addr: invalid listen address/],
  ["a missing version", "storage:\n  delete: {enabled: true}\n", /^version: required/],
  ["an unknown version", "version: 0.2\n", /^version: unsupported version "0.2"/],
  [
    "a bad catalog size",
    "version: 0.1\ncatalog: {maxentries: -1}\n",
    /^catalog\.maxentries: expected a positive integer/,
  ],
  [
    "htpasswd without a path",
    "version: 0.1\nauth:\n  htpasswd: {realm: r}\n",
    /^auth\.htpasswd\.path: required/,
  ],
  [
    "tls without a key",
    "version: 0.1\nhttp:\n  tls: {certificate: /c}\n",
    /^http\.tls\.key: required/,
  ],
  [
    "a list for a section",
    "version: 0.1\nstorage: [a, b]\n",
    /^storage: expected a section, got a list/,
  ],
  [
    "two drivers",
    "version: 0.1\nstorage:\n  filesystem: {rootdirectory: /a}\n  inmemory:\n",
    /^storage: more than one driver/,
  ],
  ["duplicate keys", "version: 0.1\nversion: 0.1\n", /config: .*[Mm]ap keys must be unique/],
  ["not a mapping", "- a\n- b\n", /config: expected a YAML mapping/],
];
for (const [what, text, message] of refused) {
  Deno.test(`config: ${what} is refused with an error naming the key`, () => {
    assert.throws(() => parseConfig(text), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, message);
      return true;
    });
  });
}

Deno.test("config: a bad value set by an environment variable names the variable", () => {
  assert.throws(
    () => parseConfig("", { env: { REGISTRY_STORAGE_DELETE_ENABLED: "maybe" } }),
    /^ConfigError: storage\.delete\.enabled \(set by REGISTRY_STORAGE_DELETE_ENABLED\): expected true or false/,
  );
});

Deno.test("config: Go durations parse to milliseconds", () => {
  assert.equal(parseDuration("168h"), 604_800_000);
  assert.equal(parseDuration("2h10m"), 7_800_000);
  assert.equal(parseDuration("1.5s"), 1500);
  assert.equal(parseDuration("300ms"), 300);
  assert.equal(parseDuration("0"), 0);
  assert.equal(parseDuration(""), undefined);
  assert.equal(parseDuration("10"), undefined);
  assert.equal(parseDuration("5d"), undefined);
});

Deno.test("config: configToEnv round-trips through the REGISTRY_* variables", () => {
  const overrides = {
    deleteEnabled: false,
    readOnly: true,
    logLevel: "debug" as const,
    accessLog: false,
    drainTimeoutMs: 1500,
    uploadPurging: { enabled: false, ageMs: 60_000, intervalMs: 1000, dryRun: true },
    maxListEntries: 5,
  };
  const env = configToEnv(overrides);
  assert.ok(env);
  assert.deepEqual(parseConfig("", { env }).config, makeConfig(overrides));
  assert.equal(configToEnv({ sparseIndexes: true }), undefined);
});

Deno.test("config: the container image's default config is valid and warning-free", () => {
  const text = Deno.readTextFileSync(new URL("../../deploy/config.yml", import.meta.url));
  const { config, warnings } = parseConfig(text);
  assert.deepEqual(warnings, []);
  assert.equal(config.dataDir, "/var/lib/registry");
  assert.equal(config.addr, ":5000");
});

Deno.test("config: flags go over the file's auth part by part", () => {
  const text = "version: 0.1\nauth:\n  htpasswd: {realm: r, path: /file}\n";
  const { config } = parseConfig(text, {
    flags: { auth: { token: { service: "s", issuer: "i" } } },
  });
  assert.deepEqual(config.auth, {
    htpasswd: { realm: "r", path: "/file" },
    token: { service: "s", issuer: "i" },
  });
});
