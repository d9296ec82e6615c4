import assert from "node:assert/strict";
import { parseConfig } from "../../src/config_yaml.ts";
import {
  assertError,
  expectStatus,
  MEDIA,
  pushImage,
  pushImageBlobs,
  putManifest,
} from "../helpers/registry.ts";
import { startServer } from "../helpers/server.ts";

const POLICIES = parseConfig(
  [
    "version: 0.1",
    "policies:",
    '  - repositories: "release/**"',
    '    immutabletags: ["v*"]',
    '  - repositories: "ci/**"',
    "    immutabletags: [stable]",
    "    retention: {keeplast: 3, untaggedafter: 0s}",
    '  - repositories: "**"',
    '    immutabletags: ["*"]',
  ].join("\n"),
).config;

Deno.test("policies: config parses the list, first entry wins, bad entries name the key", () => {
  assert.equal(POLICIES.policies?.length, 3);
  assert.deepEqual(POLICIES.policies?.[1]?.retention, { keepLast: 3, untaggedAfterMs: 0 });
  assert.throws(
    () =>
      parseConfig("version: 0.1\npolicies:\n  - repositories: x\n    retention: {keeplast: -1}"),
    /policies\[0\]\.retention\.keeplast/,
  );
  assert.throws(
    () => parseConfig("version: 0.1\npolicies:\n  - repositories: x\n    immutable: [a]"),
    /policies\[0\]\.immutable: unknown key/,
  );
});

Deno.test("policies: an immutable tag cannot be moved or deleted, nor its manifest", async () => {
  const server = await startServer({
    config: { policies: POLICIES.policies!, deleteEnabled: true },
  });
  try {
    const base = server.url;
    const first = await pushImage(base, "release/app", "v1", { seed: 1 });
    // Same manifest again under the same tag: not a move, allowed.
    await expectStatus(
      await putManifest(base, "release/app", "v1", first.bytes, MEDIA.ociManifest),
      201,
    );
    const second = await pushImageBlobs(base, "release/app", { seed: 2 });
    const moved = await assertError(
      await putManifest(base, "release/app", "v1", second.bytes, MEDIA.ociManifest),
      403,
      "DENIED",
    );
    assert.match(moved.message, /tag "v1" is immutable by policies\[0\].*"release\/\*\*".*"v\*"/);
    // ?tag= on a push by digest is refused the same way.
    const query = await fetch(`${base}/v2/release/app/manifests/${second.digest}?tag=v1`, {
      method: "PUT",
      headers: { "Content-Type": MEDIA.ociManifest },
      body: second.bytes,
    });
    await assertError(query, 403, "DENIED");
    // A tag the rule does not match moves freely.
    await expectStatus(
      await putManifest(base, "release/app", "latest", first.bytes, MEDIA.ociManifest),
      201,
    );
    await expectStatus(
      await putManifest(base, "release/app", "latest", second.bytes, MEDIA.ociManifest),
      201,
    );
    const del = await fetch(`${base}/v2/release/app/manifests/v1`, { method: "DELETE" });
    assert.match((await assertError(del, 403, "DENIED")).message, /cannot be deleted/);
    const byDigest = await fetch(`${base}/v2/release/app/manifests/${first.digest}`, {
      method: "DELETE",
    });
    assert.match((await assertError(byDigest, 403, "DENIED")).message, /carries tag "v1"/);
    const get = await fetch(`${base}/v2/release/app/manifests/v1`, {
      headers: { Accept: MEDIA.ociManifest },
    });
    assert.equal(get.headers.get("Docker-Content-Digest"), first.digest);
    await get.body?.cancel();
    // The manifest "latest" points at (no immutable tag) can go.
    await expectStatus(
      await fetch(`${base}/v2/release/app/manifests/${second.digest}`, { method: "DELETE" }),
      202,
    );
  } finally {
    await server.close();
  }
});

Deno.test("policies: retention keeps the last pushed tags, drops old untagged manifests, spares immutable tags", async () => {
  const server = await startServer({
    config: { policies: POLICIES.policies!, deleteEnabled: true },
  });
  try {
    const base = server.url;
    const stable = await pushImage(base, "ci/app", "stable", { seed: 10 });
    const pushed = [];
    for (let i = 1; i <= 5; i++) {
      pushed.push(await pushImage(base, "ci/app", `build-${i}`, { seed: i }));
      // Tag times come from the file system: keep them apart.
      await new Promise((r) => setTimeout(r, 20));
    }
    const tags = await (await fetch(`${base}/v2/ci/app/tags/list`)).json();
    assert.deepEqual(tags.tags.sort(), ["build-3", "build-4", "build-5", "stable"]);
    // build-1 and build-2 lost their tags and, untaggedafter 0s, their manifests.
    for (const image of pushed.slice(0, 2)) {
      const r = await fetch(`${base}/v2/ci/app/manifests/${image.digest}`, {
        headers: { Accept: MEDIA.ociManifest },
      });
      await assertError(r, 404, "MANIFEST_UNKNOWN");
    }
    const kept = await fetch(`${base}/v2/ci/app/manifests/${stable.digest}`, {
      headers: { Accept: MEDIA.ociManifest },
    });
    await expectStatus(kept, 200);
    // Another repository's rule applies there, not ci's.
    await pushImage(base, "other/app", "a", { seed: 1 });
    await assertError(
      await fetch(`${base}/v2/other/app/manifests/a`, { method: "DELETE" }),
      403,
      "DENIED",
    );
  } finally {
    await server.close();
  }
});

Deno.test("policies: berth retention --dry-run lists what a run then deletes", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "berth-retention-" });
  const server = await startServer({ dataDir });
  try {
    for (let i = 1; i <= 4; i++) {
      await pushImage(server.url, "ci/tool", `t${i}`, { seed: i });
      await new Promise((r) => setTimeout(r, 20));
    }
    await server.close();
    const config = `${dataDir}/config.yml`;
    await Deno.writeTextFile(
      config,
      [
        "version: 0.1",
        `storage: {filesystem: {rootdirectory: ${dataDir}}}`,
        "policies:",
        '  - repositories: "ci/*"',
        "    retention: {keeplast: 2}",
      ].join("\n"),
    );
    const run = async (...flags: string[]) => {
      const main = new URL("../../main.ts", import.meta.url).pathname;
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", main, "retention", "--config", config, ...flags],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      return new TextDecoder().decode(out.stdout).trim().split("\n").map((l) => JSON.parse(l));
    };
    const dry = await run("--dry-run");
    assert.deepEqual(dry.slice(0, -1).map((a) => a.reference).sort(), ["t1", "t2"]);
    assert.match(dry[0].reason, /keeplast 2 of policies\[0\]/);
    assert.deepEqual(dry.at(-1), { dryRun: true, deleted: 2 });
    const tagDir = `${dataDir}/docker/registry/v2/repositories/ci/tool/_manifests/tags`;
    const names = async () =>
      (await Array.fromAsync(Deno.readDir(tagDir))).map((e) => e.name).sort();
    assert.deepEqual(await names(), ["t1", "t2", "t3", "t4"]);
    assert.deepEqual((await run()).at(-1), { dryRun: false, deleted: 2 });
    assert.deepEqual(await names(), ["t3", "t4"]);
  } finally {
    await server.close().catch(() => {});
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("policies: the README's policies and notifications examples load", async () => {
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  const block = (heading: string) => {
    const from = readme.indexOf(heading);
    assert.ok(from >= 0, heading);
    const start = readme.indexOf("```yaml\n", from) + "```yaml\n".length;
    return readme.slice(start, readme.indexOf("```", start));
  };
  const policies = parseConfig(`version: 0.1\n${block("## Immutable tags and retention")}`);
  assert.equal(policies.config.policies?.length, 3);
  assert.deepEqual(policies.config.policies?.[1]?.retention, {
    keepLast: 10,
    untaggedAfterMs: 72 * 3_600_000,
  });
  const notes = parseConfig(`version: 0.1\n${block("## Notifications (webhooks)")}`);
  const [endpoint] = notes.config.notifications?.endpoints ?? [];
  assert.equal(endpoint?.backoffMs, 1000);
  assert.deepEqual(endpoint?.ignoredActions, ["pull"]);
  assert.equal(notes.config.notifications?.includeReferences, true);
  assert.deepEqual(notes.warnings, []);
});

Deno.test("policies: two concurrent first pushes of an immutable tag: one wins, the other is refused", async () => {
  const server = await startServer({ config: { policies: POLICIES.policies! } });
  try {
    const a = await pushImageBlobs(server.url, "release/race", { seed: 1 });
    const b = await pushImageBlobs(server.url, "release/race", { seed: 2 });
    const responses = await Promise.all(
      [a, b].map((image) =>
        putManifest(server.url, "release/race", "v9", image.bytes, MEDIA.ociManifest)
      ),
    );
    const statuses = responses.map((r) => r.status).sort();
    await Promise.all(responses.map((r) => r.body?.cancel()));
    assert.deepEqual(statuses, [201, 403]);
  } finally {
    await server.close();
  }
});
