/**
 * `REGISTRY_*` values read without the YAML parser (`plainScalar`) are read as YAML reads them,
 * and anything the shortcut is not sure of is left to the parser.
 *
 * @module
 */
import assert from "node:assert/strict";
import { parse } from "yaml";
import { loadConfig, needsYaml, plainScalar } from "../../src/config_file.ts";

const VALUES = [
  "",
  "~",
  "null",
  "NULL",
  "true",
  "True",
  "FALSE",
  "yes",
  "off",
  "0",
  "5000",
  "0123",
  "-1",
  "+1",
  "1.5",
  "1e3",
  "1E3",
  "1.",
  ".5",
  ".inf",
  "-.inf",
  ".nan",
  "0x1f",
  "0o17",
  "0b101",
  "123456789012345678901234",
  "10s",
  "168h",
  "64KiB",
  "info",
  "inmemory",
  "0.0.0.0:5000",
  "127.0.0.1:5000",
  ":5000",
  "1:30",
  "a:",
  "a: b",
  "a:b",
  "http://127.0.0.1:9000/path",
  "/var/lib/registry",
  "my-bucket",
  "us-east-1",
  "user@example.com",
  "a b",
  "a #b",
  "#x",
  "- a",
  "[a, b]",
  "{}",
  "{a: 1}",
  '"quoted"',
  "'quoted'",
  "*alias",
  "&anchor x",
  "!tag x",
  "|",
  ">",
  "%x",
  "@x",
  "`x",
  "10.0.0.0/8,192.168.1.1",
  "abc123==",
];

Deno.test("config: variables read without the YAML parser read as YAML reads them", () => {
  let fast = 0;
  for (const text of VALUES) {
    const plain = plainScalar(text);
    if (!plain) continue;
    fast++;
    assert.deepEqual(plain.value, parse(text), JSON.stringify(text));
  }
  // The common shapes take the shortcut.
  for (const text of ["true", "5000", "0.0.0.0:5000", "/var/lib/registry", "10s", "info"]) {
    assert.ok(plainScalar(text), text);
  }
  assert.ok(fast > 20);
});

Deno.test("config: a start without a file or YAML-shaped variables needs no YAML parser", async () => {
  assert.equal(needsYaml("", { REGISTRY_HTTP_ADDR: "127.0.0.1:5000", HOME: "{x" }), false);
  assert.equal(needsYaml("", { REGISTRY_STORAGE_INMEMORY: "{}" }), true);
  assert.equal(needsYaml("# comment\n", {}), true);
  const { config } = await loadConfig(undefined, {
    env: { REGISTRY_HTTP_ADDR: "127.0.0.1:5123", REGISTRY_STORAGE_DELETE_ENABLED: "false" },
  });
  assert.equal(config.addr, "127.0.0.1:5123");
  assert.equal(config.deleteEnabled, false);
  const yamlValue = await loadConfig(undefined, {
    env: { REGISTRY_STORAGE_INMEMORY: "{}" },
  });
  assert.equal(yamlValue.config.storage, "memory");
});
