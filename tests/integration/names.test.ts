/**
 * Repository names and tags over HTTP: the spec's patterns, long nested names, and paths that try
 * to leave the data directory.
 *
 * @module
 */
import assert from "node:assert/strict";
import { startServer } from "../helpers/server.ts";
import {
  assertError,
  digestOf,
  expectStatus,
  listFiles,
  MEDIA,
  pushBlob,
  pushImageBlobs,
  putManifest,
  rawRequest,
  text,
} from "../helpers/registry.ts";

Deno.test("names: a 255-character name with several components pushes and pulls", async () => {
  const server = await startServer();
  try {
    const parts = ["a".repeat(60), "b-c", "d.e", "f__g", "h".repeat(60), "i".repeat(60)];
    let name = parts.join("/");
    name += "/" + "z".repeat(255 - name.length - 1);
    assert.equal(name.length, 255);
    const image = await pushImageBlobs(server.url, name);
    await expectStatus(
      await putManifest(server.url, name, "v1", image.bytes, MEDIA.ociManifest),
      201,
    );
    await expectStatus(await fetch(`${server.url}/v2/${name}/manifests/v1`), 200);
    await expectStatus(
      await fetch(`${server.url}/v2/${name}/blobs/${digestOf(image.layer)}`),
      200,
    );
    // One more character is too long.
    await assertError(
      await fetch(`${server.url}/v2/${name}x/manifests/v1`),
      400,
      "NAME_INVALID",
    );
  } finally {
    await server.close();
  }
});

Deno.test("names: names outside the spec's pattern answer 400 NAME_INVALID", async () => {
  const server = await startServer();
  try {
    const bad = ["UPPER", "a/B", "-lead", "trail-", "a..b", "a/.b", "a_", "a___b", "a%20b", "a:b"];
    for (const name of bad) {
      await assertError(
        await fetch(`${server.url}/v2/${name}/blobs/uploads/`, { method: "POST" }),
        400,
        "NAME_INVALID",
      ).catch((error) => {
        throw new Error(`${name}: ${error.message}`);
      });
      await assertError(
        await fetch(`${server.url}/v2/${name}/manifests/latest`),
        400,
        "NAME_INVALID",
      );
    }
  } finally {
    await server.close();
  }
});

Deno.test("names: tags outside the spec's pattern answer 400 MANIFEST_INVALID", async () => {
  const server = await startServer();
  try {
    const image = await pushImageBlobs(server.url, "repo");
    const longest = "t".repeat(128);
    await expectStatus(
      await putManifest(server.url, "repo", longest, image.bytes, MEDIA.ociManifest),
      201,
    );
    await expectStatus(await fetch(`${server.url}/v2/repo/manifests/${longest}`), 200);
    for (const tag of ["t".repeat(129), ".hidden", "-dash", "a%20b", "a%2Fb"]) {
      await assertError(
        await putManifest(server.url, "repo", tag, image.bytes, MEDIA.ociManifest),
        400,
        "MANIFEST_INVALID",
      ).catch((error) => {
        throw new Error(`${tag}: ${error.message}`);
      });
    }
  } finally {
    await server.close();
  }
});

Deno.test("names: dot-dot, encoded dots and encoded slashes never leave the data directory", async () => {
  const parent = await Deno.makeTempDir({ prefix: "berth-escape-" });
  const dataDir = `${parent}/data`;
  await Deno.mkdir(dataDir);
  const server = await startServer({ dataDir });
  try {
    const image = await pushImageBlobs(server.url, "safe");
    const manifest = new TextDecoder().decode(image.bytes);
    const digest = digestOf(text("payload"));
    const names = [
      "..",
      "../..",
      "%2e%2e",
      "%2e%2e/%2e%2e/%2e%2e",
      "safe/..%2f..%2f..",
      "safe%2f..%2f..%2fescaped",
      "..%2F..%2Fescaped",
      "a/%2E%2E/%2E%2E/%2E%2E/escaped",
      "safe/%252e%252e",
    ];
    const statuses: number[] = [];
    for (const name of names) {
      for (
        const [method, path, body] of [
          ["POST", `/v2/${name}/blobs/uploads/?digest=${digest}`, "payload"],
          ["POST", `/v2/${name}/blobs/uploads/`, ""],
          ["PUT", `/v2/${name}/manifests/latest`, manifest],
          ["GET", `/v2/${name}/manifests/latest`, undefined],
          ["GET", `/v2/${name}/blobs/${digest}`, undefined],
        ] as const
      ) {
        const headers: Record<string, string> = { "Content-Type": MEDIA.ociManifest };
        const response = await rawRequest(server.url, method, path, {
          headers,
          ...(body !== undefined && { body }),
        });
        assert.ok(
          response.status >= 400 && response.status < 500,
          `${method} ${path}: ${response.raw}`,
        );
        statuses.push(response.status);
      }
    }
    const paths = [
      ["PUT", `/v2/safe/manifests/..%2F..%2F..%2Fescaped`],
      ["PUT", `/v2/safe/manifests/%2e%2e`],
      ["GET", `/v2/safe/blobs/sha256:..%2F..%2F${"0".repeat(58)}`],
      ["PATCH", `/v2/safe/blobs/uploads/..%2F..%2F..%2Fescaped`],
      ["PUT", `/v2/safe/blobs/uploads/%2e%2e?digest=${digest}`],
      ["DELETE", `/v2/safe/blobs/uploads/..%2f_layers`],
    ];
    for (const [method, path] of paths) {
      const response = await rawRequest(server.url, method!, path!, {
        headers: { "Content-Type": MEDIA.ociManifest },
        body: manifest,
      });
      assert.ok(
        response.status >= 400 && response.status < 500,
        `${method} ${path}: ${response.raw}`,
      );
    }
    // Nothing was written beside the data directory, nor outside `safe` within it.
    assert.deepEqual([...Deno.readDirSync(parent)].map((e) => e.name), ["data"]);
    const files = await listFiles(`${dataDir}/docker/registry/v2/repositories`);
    assert.ok(files.every((f) => f.startsWith("safe/") || f.startsWith("a/")), files.join("\n"));
    assert.ok(!files.some((f) => f.includes("escaped")));
  } finally {
    await server.close();
    await Deno.remove(parent, { recursive: true });
  }
});

Deno.test("names: a name is checked before the upload body is read", async () => {
  const server = await startServer();
  try {
    await pushBlob(server.url, "good", text("ok"));
    const response = await fetch(
      `${server.url}/v2/Bad/blobs/uploads/?digest=${digestOf(text("x"))}`,
      {
        method: "POST",
        body: text("x"),
      },
    );
    await assertError(response, 400, "NAME_INVALID");
  } finally {
    await server.close();
  }
});
