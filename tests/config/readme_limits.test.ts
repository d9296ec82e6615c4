/**
 * The README's table of limits stays true: every bounded setting has a row naming its key, its
 * `REGISTRY_*` variable, its flag (which `serve --help` lists) and its default.
 *
 * @module
 */
import assert from "node:assert/strict";
import { SERVE_USAGE } from "../../src/commands/serve.ts";
import { makeConfig } from "../../src/config.ts";
import { BOUNDED_SETTINGS, envName, formatSetting } from "../../src/config_file.ts";
import { parseConfig } from "../../src/config_yaml.ts";

const README = Deno.readTextFileSync(new URL("../../README.md", import.meta.url));

Deno.test("README: every limit has a row with its default, key, flag and variable", () => {
  const rows = README.split("\n").filter((line) => line.startsWith("| "));
  const defaults = makeConfig();
  const keys = BOUNDED_SETTINGS.map((setting) => setting.key);
  assert.deepEqual(keys, [...new Set(keys)], "each setting once");
  for (const setting of BOUNDED_SETTINGS) {
    const row = rows.find((line) => line.includes(`| \`${setting.key}\` `));
    assert.ok(row, `no README row for ${setting.key}`);
    const cells = row.split("|").map((cell) => cell.trim());
    const shown = formatSetting(setting.unit, setting.read(defaults));
    assert.ok(
      cells[2]!.startsWith(shown),
      `${setting.key}: README says ${cells[2]}, default ${shown}`,
    );
    assert.equal(cells[5], `\`${envName(setting.key)}\``, setting.key);
    if (setting.flag) {
      assert.ok(cells[4]!.startsWith(`\`${setting.flag} `), `${setting.key}: flag ${cells[4]}`);
      assert.ok(SERVE_USAGE.includes(`${setting.flag} `), `serve --help lacks ${setting.flag}`);
    } else assert.equal(cells[4], "—", setting.key);
    // The variable works, and the default is within bounds.
    const { config } = parseConfig("", { env: { [envName(setting.key)]: shown } });
    assert.equal(setting.read(config), setting.read(defaults), setting.key);
  }
});
