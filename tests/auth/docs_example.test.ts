/**
 * docs/auth.md stays true: its config example and policy file are accepted by the config parser.
 *
 * @module
 */
import assert from "node:assert/strict";
import { parseConfig } from "../../src/config_yaml.ts";
import { withTempDir } from "../helpers/temp.ts";

const DOC = new URL("../../docs/auth.md", import.meta.url);

/** The fenced blocks of a language in a Markdown text. */
function blocks(markdown: string, language: string): string[] {
  const fence = new RegExp("```" + language + "\\n([\\s\\S]*?)```", "g");
  return [...markdown.matchAll(fence)].map((m) => m[1]!);
}

Deno.test("docs/auth.md: the config example and its policy file parse", async () => {
  const markdown = await Deno.readTextFile(DOC);
  const [yaml] = blocks(markdown, "yaml");
  const [json] = blocks(markdown, "json");
  assert.ok(yaml && json, "docs/auth.md has a yaml and a json example");
  await withTempDir("berth-docs-", async (dir) => {
    await Deno.writeTextFile(`${dir}/policy.json`, json);
    const text = yaml.replaceAll("/etc/berth/policy.json", `${dir}/policy.json`);
    const { config } = parseConfig(text, { env: {} });
    assert.equal(config.auth?.htpasswd?.path, "/etc/berth/htpasswd");
    assert.equal(config.auth?.token?.service, "registry.example");
    assert.equal(config.auth?.token?.realm, "https://registry.example/auth/token");
    assert.equal(config.auth?.policy?.rules.length, 3);
    assert.deepEqual(config.auth?.policy?.admins, ["alice", "@ops"]);
    assert.equal(config.tls?.key, "/etc/berth/key.pem");
  });
});
