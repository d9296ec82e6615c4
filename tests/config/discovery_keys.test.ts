/**
 * The configuration keys of content management: `catalog.maxentries` (distribution's) and
 * `storage.maintenance.gc` (berth's), from YAML and from `REGISTRY_*` variables.
 *
 * @module
 */
import assert from "node:assert/strict";
import { ConfigError, configToEnv } from "../../src/config_file.ts";
import { parseConfig } from "../../src/config_yaml.ts";
import { makeConfig } from "../../src/config.ts";

const YAML = `version: 0.1
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  maintenance:
    gc:
      interval: 6h
      graceperiod: 30m
      adminendpoint: true
catalog:
  maxentries: 250
`;

Deno.test("config: catalog.maxentries and storage.maintenance.gc are read from YAML", () => {
  const { config } = parseConfig(YAML);
  assert.equal(config.maxListEntries, 250);
  assert.deepEqual(config.gc, {
    intervalMs: 6 * 3600_000,
    gracePeriodMs: 30 * 60_000,
    adminEndpoint: true,
  });
});

Deno.test("config: the gc keys and maxentries come from REGISTRY_* variables too", () => {
  const { config } = parseConfig("version: 0.1\n", {
    env: {
      REGISTRY_CATALOG_MAXENTRIES: "40",
      REGISTRY_STORAGE_MAINTENANCE_GC_INTERVAL: "0",
      REGISTRY_STORAGE_MAINTENANCE_GC_GRACEPERIOD: "10m",
    },
  });
  assert.equal(config.maxListEntries, 40);
  assert.deepEqual(config.gc, { intervalMs: 0, gracePeriodMs: 600_000, adminEndpoint: false });
});

Deno.test("config: a bad maxentries names the key", () => {
  for (const value of ["0", "-3", "many", "1.5"]) {
    assert.throws(
      () => parseConfig(`version: 0.1\ncatalog:\n  maxentries: ${value}\n`),
      (error) => error instanceof ConfigError && /catalog\.maxentries/.test(error.message),
    );
  }
});

Deno.test("config: configToEnv round-trips the gc settings and maxListEntries", () => {
  const gc = { intervalMs: 0, gracePeriodMs: 1500, adminEndpoint: true };
  const env = configToEnv({ gc, maxListEntries: 100 });
  assert.ok(env);
  const { config } = parseConfig("version: 0.1\n", { env });
  assert.deepEqual(config.gc, gc);
  assert.equal(config.maxListEntries, 100);
  assert.equal(makeConfig().maxListEntries, 1000);
});
