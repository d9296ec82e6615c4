/**
 * `berth sync`, `berth inspect` and `berth list-tags` against berth registries (and skopeo's
 * inspect for the same image when skopeo is installed).
 *
 * @module
 */
import assert from "node:assert/strict";
import { digestOf, pushImage } from "../helpers/registry.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { withTempDir } from "../helpers/temp.ts";
import { hasTool, run } from "../helpers/tools.ts";
import { refsOf } from "../transports/layouts.ts";
import { berth } from "./cli.ts";

async function withTwo(body: (a: TestServer, b: TestServer) => Promise<void>): Promise<void> {
  const a = await startServer();
  const b = await startServer();
  try {
    await body(a, b);
  } finally {
    await a.close();
    await b.close();
  }
}

const TLS = ["--src-tls-verify=false", "--dest-tls-verify=false"];

Deno.test("sync: matching tags of a repository, then incrementally, with --dry-run", async () => {
  await withTwo(async (a, b) => {
    const v1 = await pushImage(a.url, "team/app", "v1", { seed: 1 });
    await pushImage(a.url, "team/app", "v2", { seed: 2 });
    await pushImage(a.url, "team/app", "dev", { seed: 3 });
    const first = await berth([
      "sync",
      ...TLS,
      "--tags",
      "v[0-9]+",
      "--json",
      `docker://${a.host}/team/app`,
      `docker://${b.host}/copy/app`,
    ]);
    assert.equal(first.code, 0, first.stderr);
    const summary = JSON.parse(first.stdout);
    assert.deepEqual(summary.tags.map((t: { status: string }) => t.status), ["copied", "copied"]);
    const tags = await (await fetch(`${b.url}/v2/copy/app/tags/list`)).json();
    assert.deepEqual(tags.tags.sort(), ["v1", "v2"]);
    await pushImage(a.url, "team/app", "v3", { seed: 4 });
    const dry = await berth([
      "sync",
      ...TLS,
      "--tags",
      "v.*",
      "--dry-run",
      `docker://${a.host}/team/app`,
      `docker://${b.host}/copy/app`,
    ]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, new RegExp(`up to date team/app:v1 ${v1.digest}`));
    assert.match(dry.stdout, /would copy team\/app:v3/);
    assert.equal((await (await fetch(`${b.url}/v2/copy/app/tags/list`)).json()).tags.length, 2);
    const second = await berth([
      "sync",
      ...TLS,
      "--tags",
      "v.*",
      `docker://${a.host}/team/app`,
      `docker://${b.host}/copy/app`,
    ]);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /copied 1, up to date 2, failed 0/);
  });
});

Deno.test("sync: a whole registry through its catalog, under a prefix; into an OCI layout and an archive", async () => {
  await withTwo(async (a, b) => {
    await pushImage(a.url, "one", "v1", { seed: 1 });
    await pushImage(a.url, "two/deep", "v1", { seed: 2 });
    const all = await berth([
      "sync",
      ...TLS,
      "-q",
      `docker://${a.host}`,
      `docker://${b.host}/mirror`,
    ]);
    assert.equal(all.code, 0, all.stderr);
    assert.equal(all.stdout, "");
    const catalog = await (await fetch(`${b.url}/v2/_catalog`)).json();
    assert.deepEqual(catalog.repositories.sort(), ["mirror/one", "mirror/two/deep"]);
    await withTempDir("berth-sync-", async (dir) => {
      const out = await berth(["sync", ...TLS, `docker://${a.host}/two/deep`, `oci:${dir}/layout`]);
      assert.equal(out.code, 0, out.stderr);
      assert.deepEqual(Object.keys(await refsOf(`${dir}/layout`)), ["v1"]);
      const again = await berth([
        "sync",
        ...TLS,
        `docker://${a.host}/two/deep`,
        `oci:${dir}/layout`,
      ]);
      assert.match(again.stdout, /up to date two\/deep:v1/);
    });
    const bad = await berth(["sync", ...TLS, `docker://${a.host}/one:v1`, `docker://${b.host}/x`]);
    assert.equal(bad.code, 2);
  });
});

Deno.test("sync: every tag into one docker archive, one entry per image with all its tags", async () => {
  await withTwo(async (a) => {
    const v1 = await pushImage(a.url, "team/app", "v1", { seed: 1, docker: true });
    await pushImage(a.url, "team/app", "latest", { seed: 1, docker: true }); // same image as v1
    const v2 = await pushImage(a.url, "team/app", "v2", { seed: 2, docker: true });
    await pushImage(a.url, "other", "x", { seed: 3, docker: true });
    await withTempDir("berth-sync-docker-archive-", async (dir) => {
      const archive = `${dir}/all.tar`;
      const out = await berth([
        "sync",
        ...TLS,
        "--json",
        `docker://${a.host}/team/app`,
        `docker-archive:${archive}`,
      ]);
      assert.equal(out.code, 0, out.stderr);
      assert.deepEqual(
        JSON.parse(out.stdout).tags.map((t: { status: string }) => t.status),
        ["copied", "copied", "copied"],
      );
      const entries = JSON.parse(await run("tar", ["-xOf", archive, "manifest.json"])) as {
        Config: string;
        RepoTags: string[];
        Layers: string[];
      }[];
      assert.equal(entries.length, 2);
      const configPath = (image: typeof v1) => `blobs/${digestOf(image.config).replace(":", "/")}`;
      const first = entries.find((e) => e.Config === configPath(v1));
      const second = entries.find((e) => e.Config === configPath(v2));
      assert.deepEqual(first?.RepoTags.sort(), [
        `${a.host}/team/app:latest`,
        `${a.host}/team/app:v1`,
      ]);
      assert.deepEqual(second?.RepoTags, [`${a.host}/team/app:v2`]);
      assert.deepEqual(first?.Layers, [`blobs/${digestOf(v1.layer).replace(":", "/")}`]);
      // Each image reads back by its tag, with the same config and layer.
      const inspected = await berth(["inspect", `docker-archive:${archive}:${a.host}/team/app:v2`]);
      assert.equal(inspected.code, 0, inspected.stderr);
      assert.deepEqual(JSON.parse(inspected.stdout).Layers, [digestOf(v2.layer)]);
      // Rerun: written anew (nothing to compare digests with), the same two entries.
      const again = await berth([
        "sync",
        ...TLS,
        "-q",
        `docker://${a.host}/team/app`,
        `docker-archive:${archive}`,
      ]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(JSON.parse(await run("tar", ["-xOf", archive, "manifest.json"])).length, 2);
      // A whole registry goes into one archive too.
      const all = await berth([
        "sync",
        ...TLS,
        "-q",
        `docker://${a.host}`,
        `docker-archive:${dir}/registry.tar`,
      ]);
      assert.equal(all.code, 0, all.stderr);
      const tags =
        (JSON.parse(await run("tar", ["-xOf", `${dir}/registry.tar`, "manifest.json"])) as {
          RepoTags: string[];
        }[]).flatMap((e) => e.RepoTags).sort();
      assert.deepEqual(tags, [
        `${a.host}/other:x`,
        `${a.host}/team/app:latest`,
        `${a.host}/team/app:v1`,
        `${a.host}/team/app:v2`,
      ]);
      const tagged = await berth([
        "sync",
        ...TLS,
        `docker://${a.host}/team/app`,
        `docker-archive:${dir}/t.tar:a:b`,
      ]);
      assert.equal(tagged.code, 2);
      const left = [];
      for await (const entry of Deno.readDir(dir)) left.push(entry.name);
      assert.deepEqual(left.sort(), ["all.tar", "registry.tar"]); // no staging folder left behind
    });
  });
});

Deno.test("inspect and list-tags: skopeo's fields for a registry image, the raw manifest, the config", async () => {
  await withTwo(async (a) => {
    const image = await pushImage(a.url, "team/app", "v1", { seed: 7 });
    await pushImage(a.url, "team/app", "v2", { seed: 8 });
    const ref = `docker://${a.host}/team/app:v1`;
    const out = await berth(["inspect", "--tls-verify=false", ref]);
    assert.equal(out.code, 0, out.stderr);
    const info = JSON.parse(out.stdout);
    assert.equal(info.Name, `${a.host}/team/app`);
    assert.equal(info.Digest, image.digest);
    assert.deepEqual(info.RepoTags.sort(), ["v1", "v2"]);
    assert.equal(info.Architecture, "amd64");
    assert.equal(info.Os, "linux");
    assert.equal(info.Layers.length, 1);
    assert.equal(info.LayersData[0].Size, image.layer.length);
    for (const key of ["Created", "DockerVersion", "Labels", "Env"]) {
      assert.ok(key in info || key === "Created");
    }
    const raw = await berth(["inspect", "--raw", "--tls-verify=false", ref]);
    assert.equal(raw.stdout, new TextDecoder().decode(image.bytes));
    const config = await berth(["inspect", "--config", "--tls-verify=false", ref]);
    assert.deepEqual(JSON.parse(config.stdout), JSON.parse(new TextDecoder().decode(image.config)));
    const tags = await berth(["list-tags", "--tls-verify=false", `docker://${a.host}/team/app`]);
    assert.deepEqual(JSON.parse(tags.stdout), {
      Repository: `${a.host}/team/app`,
      Tags: ["v1", "v2"],
    });
    if (hasTool("skopeo")) {
      const theirs = JSON.parse(await run("skopeo", ["inspect", "--tls-verify=false", ref]));
      // skopeo 1.9 prints no LayersData: compare the fields it prints.
      for (const key of ["Digest", "Architecture", "Os", "Layers", "LayersData", "Env", "Labels"]) {
        if (key in theirs) assert.deepEqual(info[key], theirs[key], key);
      }
    }
    const missing = await berth([
      "inspect",
      "--tls-verify=false",
      `docker://${a.host}/team/none:v1`,
    ]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /team\/none:v1: not found/);
  });
});
