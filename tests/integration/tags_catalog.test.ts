/**
 * Tags list and catalog over HTTP: sorting, `n`/`last` pagination, `Link` headers, errors.
 *
 * @module
 */
import assert from "node:assert/strict";
import { SETTLE_MS } from "../../src/storage/drivers/fs/listing_cache.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import {
  assertError,
  expectStatus,
  MEDIA,
  pushImageBlobs,
  putManifest,
} from "../helpers/registry.ts";

async function withServer(
  body: (server: TestServer) => Promise<void>,
  config: Parameters<typeof startServer>[0] = {},
): Promise<void> {
  const server = await startServer(config);
  try {
    await body(server);
  } finally {
    await server.close();
  }
}

/** Push one image into `name` and tag it with every tag given. */
async function pushTags(server: TestServer, name: string, tags: string[]): Promise<string> {
  const image = await pushImageBlobs(server.url, name);
  for (const tag of tags) {
    await expectStatus(
      await putManifest(server.url, name, tag, image.bytes, MEDIA.ociManifest),
      201,
    );
  }
  return image.digest;
}

async function getJson(
  url: string,
): Promise<{ status: number; link: string | null; body: unknown }> {
  const response = await fetch(url);
  const body = await response.json();
  return { status: response.status, link: response.headers.get("Link"), body };
}

Deno.test("tags: list is sorted lexically and names the repository", async () => {
  await withServer(async (server) => {
    await pushTags(server, "library/app", ["v2", "latest", "V1", "1.0", "_x", "a-b"]);
    const { status, link, body } = await getJson(`${server.url}/v2/library/app/tags/list`);
    assert.equal(status, 200);
    assert.equal(link, null);
    assert.deepEqual(body, {
      name: "library/app",
      tags: ["1.0", "V1", "_x", "a-b", "latest", "v2"],
    });
  });
});

Deno.test("tags: n and last page through the list with a Link header", async () => {
  await withServer(async (server) => {
    await pushTags(server, "app", ["a", "b", "c", "d", "e"]);
    const first = await getJson(`${server.url}/v2/app/tags/list?n=2`);
    assert.deepEqual(first.body, { name: "app", tags: ["a", "b"] });
    assert.equal(first.link, `</v2/app/tags/list?n=2&last=b>; rel="next"`);
    const second = await getJson(`${server.url}/v2/app/tags/list?n=2&last=b`);
    assert.deepEqual(second.body, { name: "app", tags: ["c", "d"] });
    assert.equal(second.link, `</v2/app/tags/list?n=2&last=d>; rel="next"`);
    const third = await getJson(`${server.url}/v2/app/tags/list?n=2&last=d`);
    assert.deepEqual(third.body, { name: "app", tags: ["e"] });
    assert.equal(third.link, null);
    const exact = await getJson(`${server.url}/v2/app/tags/list?n=5`);
    assert.deepEqual(exact.body, { name: "app", tags: ["a", "b", "c", "d", "e"] });
    assert.equal(exact.link, null, "no Link when nothing remains");
    const between = await getJson(`${server.url}/v2/app/tags/list?last=bb`);
    assert.deepEqual(between.body, { name: "app", tags: ["c", "d", "e"] });
    const after = await getJson(`${server.url}/v2/app/tags/list?last=z`);
    assert.deepEqual(after.body, { name: "app", tags: [] });
  });
});

Deno.test("tags: n=0 gives an empty list", async () => {
  await withServer(async (server) => {
    await pushTags(server, "app", ["a", "b"]);
    const { status, link, body } = await getJson(`${server.url}/v2/app/tags/list?n=0`);
    assert.equal(status, 200);
    assert.deepEqual(body, { name: "app", tags: [] });
    assert.equal(link, null);
  });
});

Deno.test("tags: a page is capped at maxListEntries and links on", async () => {
  await withServer(async (server) => {
    await pushTags(server, "app", ["a", "b", "c"]);
    const capped = await getJson(`${server.url}/v2/app/tags/list?n=100`);
    assert.deepEqual(capped.body, { name: "app", tags: ["a", "b"] });
    assert.equal(capped.link, `</v2/app/tags/list?n=2&last=b>; rel="next"`);
    const implicit = await getJson(`${server.url}/v2/app/tags/list`);
    assert.deepEqual(implicit.body, { name: "app", tags: ["a", "b"] });
  }, { config: { maxListEntries: 2 } });
});

Deno.test("tags: unknown repository is 404 NAME_UNKNOWN", async () => {
  await withServer(async (server) => {
    await assertError(await fetch(`${server.url}/v2/nobody/tags/list`), 404, "NAME_UNKNOWN");
  });
});

Deno.test("tags: a non-numeric, negative or fractional n is 400", async () => {
  await withServer(async (server) => {
    await pushTags(server, "app", ["a"]);
    for (const n of ["abc", "-1", "1.5", "", "1e3", "99999999999999999999"]) {
      await assertError(
        await fetch(`${server.url}/v2/app/tags/list?n=${encodeURIComponent(n)}`),
        400,
        "UNSUPPORTED",
      );
    }
  });
});

Deno.test("tags: a deleted tag leaves the list", async () => {
  await withServer(async (server) => {
    await pushTags(server, "app", ["a", "b"]);
    await expectStatus(await fetch(`${server.url}/v2/app/manifests/a`, { method: "DELETE" }), 202);
    assert.deepEqual((await getJson(`${server.url}/v2/app/tags/list`)).body, {
      name: "app",
      tags: ["b"],
    });
  });
});

Deno.test("catalog: lists repositories sorted, paginated with n, last and Link", async () => {
  await withServer(async (server) => {
    for (const name of ["zeta", "alpha/one", "alpha", "beta", "alpha-two"]) {
      await pushTags(server, name, ["latest"]);
    }
    const all = await getJson(`${server.url}/v2/_catalog`);
    assert.equal(all.status, 200);
    assert.deepEqual(all.body, {
      repositories: ["alpha", "alpha-two", "alpha/one", "beta", "zeta"],
    });
    assert.equal(all.link, null);
    const first = await getJson(`${server.url}/v2/_catalog?n=2`);
    assert.deepEqual(first.body, { repositories: ["alpha", "alpha-two"] });
    assert.equal(first.link, `</v2/_catalog?n=2&last=alpha-two>; rel="next"`);
    const second = await getJson(`${server.url}/v2/_catalog?n=2&last=alpha-two`);
    assert.deepEqual(second.body, { repositories: ["alpha/one", "beta"] });
    assert.equal(second.link, `</v2/_catalog?n=2&last=beta>; rel="next"`);
    const last = await getJson(`${server.url}/v2/_catalog?n=2&last=beta`);
    assert.deepEqual(last.body, { repositories: ["zeta"] });
    assert.equal(last.link, null);
    assert.deepEqual((await getJson(`${server.url}/v2/_catalog?n=0`)).body, { repositories: [] });
  });
});

Deno.test("catalog: an empty registry lists no repositories", async () => {
  await withServer(async (server) => {
    assert.deepEqual((await getJson(`${server.url}/v2/_catalog`)).body, { repositories: [] });
  });
});

Deno.test("catalog: a bad n is 400 UNSUPPORTED", async () => {
  await withServer(async (server) => {
    for (const n of ["x", "-5", "2.0"]) {
      await assertError(
        await fetch(`${server.url}/v2/_catalog?n=${n}`),
        400,
        "UNSUPPORTED",
      );
    }
  });
});

Deno.test("catalog: a second server on the same data directory sees new repositories", async () => {
  await withServer(async (first) => {
    const second = await startServer({ dataDir: first.dataDir });
    try {
      await pushTags(first, "one", ["latest"]);
      assert.deepEqual((await getJson(`${second.url}/v2/_catalog`)).body, {
        repositories: ["one"],
      });
      await pushTags(first, "two", ["latest"]);
      assert.deepEqual((await getJson(`${second.url}/v2/_catalog`)).body, {
        repositories: ["one", "two"],
      });
    } finally {
      await second.close();
    }
  });
});

Deno.test("tags: a tag moved through one server is answered at once by a second one on the same data", async () => {
  await withServer(async (first) => {
    const second = await startServer({ dataDir: first.dataDir });
    try {
      const head = async () => {
        const response = await fetch(`${second.url}/v2/moving/manifests/latest`, {
          method: "HEAD",
        });
        await expectStatus(response, 200);
        return response.headers.get("Docker-Content-Digest");
      };
      for (const seed of [1, 2, 3]) {
        const image = await pushImageBlobs(first.url, "moving", { seed });
        await expectStatus(
          await putManifest(first.url, "moving", "latest", image.bytes, MEDIA.ociManifest),
          201,
        );
        // Asked right after the move; then again once the link is old enough to be kept in
        // memory (SETTLE_MS), so the next move must be noticed by the second server's cache.
        assert.equal(await head(), image.digest);
        await new Promise((resolve) => setTimeout(resolve, SETTLE_MS + 50));
        assert.equal(await head(), image.digest);
        assert.equal(await head(), image.digest);
      }
    } finally {
      await second.close();
    }
  });
});

Deno.test("tags: a list answered from memory changes when a second server adds or removes a tag", async () => {
  await withServer(async (first) => {
    const second = await startServer({ dataDir: first.dataDir });
    try {
      await pushTags(first, "kept", ["a", "b"]);
      const list = async () => (await getJson(`${second.url}/v2/kept/tags/list`)).body;
      // Once the folder has settled its listing (and the answer) is kept: asked twice.
      await new Promise((resolve) => setTimeout(resolve, SETTLE_MS + 50));
      assert.deepEqual(await list(), { name: "kept", tags: ["a", "b"] });
      assert.deepEqual(await list(), { name: "kept", tags: ["a", "b"] });
      await pushTags(first, "kept", ["c"]);
      assert.deepEqual(await list(), { name: "kept", tags: ["a", "b", "c"] });
      await expectStatus(
        await fetch(`${first.url}/v2/kept/manifests/a`, { method: "DELETE" }),
        202,
      );
      assert.deepEqual(await list(), { name: "kept", tags: ["b", "c"] });
    } finally {
      await second.close();
    }
  });
});
