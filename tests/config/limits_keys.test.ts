/**
 * The `limits.*` keys, `http.debug.addr`, and the bounds every number of the configuration is
 * checked against (whether a file, a `REGISTRY_*` variable or a flag set it).
 *
 * @module
 */
import assert from "node:assert/strict";
import { loadServeConfig } from "../../src/commands/serve.ts";
import { makeConfig } from "../../src/config.ts";
import { ConfigError, configToEnv, parseDuration, parseSize } from "../../src/config_file.ts";
import { parseConfig } from "../../src/config_yaml.ts";

Deno.test("config: limits.* keys and http.debug.addr are read from YAML and variables", () => {
  const { config } = parseConfig(
    `version: 0.1
http:
  debug:
    addr: 127.0.0.1:5001
limits:
  maxheaderbytes: 32KiB
  maxbodybytes: 2GiB
  maxmanifestbytes: 8MiB
  manifestcachebytes: 16MiB
  maxuploadsperclient: 10
  uploadsessiontimeout: 10m
  bodyidletimeout: 30s
  minbodybytespersecond: 2048
`,
    { env: { REGISTRY_LIMITS_MAXUPLOADSPERCLIENT: "12" } },
  );
  assert.equal(config.debugAddr, "127.0.0.1:5001");
  assert.equal(config.maxManifestBytes, 8 * 1024 * 1024);
  assert.equal(config.manifestCacheBytes, 16 * 1024 * 1024);
  assert.deepEqual(config.limits, {
    maxHeaderBytes: 32 * 1024,
    maxBodyBytes: 2 * 1024 ** 3,
    maxUploadsPerClient: 12,
    uploadSessionTimeoutMs: 600_000,
    bodyIdleTimeoutMs: 30_000,
    minBodyBytesPerSecond: 2048,
  });
});

Deno.test("config: sizes take units, durations stay finite", () => {
  assert.equal(parseSize("65536"), 65536);
  assert.equal(parseSize("64MiB"), 64 * 1024 * 1024);
  assert.equal(parseSize("1.5GB"), 1.5e9);
  assert.equal(parseSize("64m"), 64 * 1024 * 1024);
  assert.equal(parseSize("64 parsecs"), undefined);
  assert.equal(parseSize("-1"), undefined);
  assert.equal(parseDuration("9".repeat(400) + "h"), undefined);
});

Deno.test("config: a 720h purging interval is accepted (the schedule chains its timers)", () => {
  const { config } = parseConfig(
    "version: 0.1\nstorage:\n  maintenance:\n    uploadpurging: {enabled: true, interval: 720h}\n",
  );
  assert.equal(config.uploadPurging.intervalMs, 720 * 3_600_000);
});

Deno.test("config: absurd numbers are refused, naming the key, its variable and its flag", () => {
  const cases: [string, Record<string, string>, RegExp][] = [
    [
      "version: 0.1\nstorage:\n  maintenance:\n    uploadpurging: {interval: 100000h}\n",
      {},
      /^storage\.maintenance\.uploadpurging\.interval: 100000h is out of range: use at most 8760h \(also REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_INTERVAL\)$/,
    ],
    [
      "",
      { REGISTRY_STORAGE_MAINTENANCE_GC_INTERVAL: "1000000h" },
      /^storage\.maintenance\.gc\.interval: .* --gc-interval\)$/,
    ],
    ["", { REGISTRY_HTTP_DRAINTIMEOUT: "9000h" }, /^http\.draintimeout: 9000h is out of range/],
    ["", { REGISTRY_LIMITS_BODYIDLETIMEOUT: "0" }, /^limits\.bodyidletimeout: 0ms .* at least/],
    ["", { REGISTRY_LIMITS_MAXMANIFESTBYTES: "1GiB" }, /^limits\.maxmanifestbytes: 1GiB/],
  ];
  for (const [text, env, message] of cases) {
    assert.throws(() => parseConfig(text, { env }), (error: Error) => {
      assert.ok(error instanceof ConfigError, String(error));
      assert.match(error.message, message);
      return true;
    });
  }
});

Deno.test("config: flags set limits and GC key by key, and are bounded too", async () => {
  const { config } = await loadServeConfig(
    ["--gc-interval", "6h", "--manifest-cache", "8MiB", "--debug-addr", "127.0.0.1:0"],
    { REGISTRY_STORAGE_MAINTENANCE_GC_GRACEPERIOD: "2h" },
  );
  assert.deepEqual(config.gc, {
    ...makeConfig().gc,
    intervalMs: 6 * 3_600_000,
    gracePeriodMs: 2 * 3_600_000,
  });
  assert.equal(config.manifestCacheBytes, 8 * 1024 * 1024);
  assert.equal(config.debugAddr, "127.0.0.1:0");
  await assert.rejects(
    loadServeConfig(["--drain-timeout", "2000h"], {}),
    /http\.draintimeout: 2000h is out of range: .*--drain-timeout/,
  );
});

Deno.test("config: limits and the cache budget pass to a child process as variables", () => {
  const overrides = {
    maxManifestBytes: 8 * 1024 * 1024,
    manifestCacheBytes: 1024 * 1024,
    debugAddr: "127.0.0.1:0",
    limits: { maxUploadsPerClient: 3, bodyIdleTimeoutMs: 500 },
  };
  const env = configToEnv(overrides)!;
  const { config } = parseConfig("", { env });
  assert.equal(config.maxManifestBytes, overrides.maxManifestBytes);
  assert.equal(config.manifestCacheBytes, overrides.manifestCacheBytes);
  assert.equal(config.debugAddr, overrides.debugAddr);
  assert.deepEqual(config.limits, overrides.limits);
});
