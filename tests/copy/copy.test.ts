/**
 * `berth copy` between berth registries: an index with its children and referrers (digests kept),
 * one platform, cross-repository mounts, Bearer and Basic auth, a lying registry, schema 1,
 * an interrupted copy, and the command's output and exit codes.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createApp } from "../../src/app.ts";
import { type Config, makeConfig } from "../../src/config.ts";
import { ClientError } from "../../src/client/errors.ts";
import { copyImage, type CopyOptions } from "../../src/copy/copy.ts";
import { ClientPool, type SideOptions } from "../../src/transports/client_pool.ts";
import { openDestination, openSource } from "../../src/transports/mod.ts";
import { POLICY, writeHtpasswd } from "../auth/fixtures.ts";
import {
  bytesOf,
  descriptor,
  digestOf,
  MEDIA,
  pushBlob,
  pushImage,
  pushIndexAndSignature,
  putManifest,
  randomBytes,
  type TestImage,
  text,
} from "../helpers/registry.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { berth } from "./cli.ts";
import { startFake } from "../client/fake_server.ts";

const INSECURE: SideOptions = { tlsVerify: false };

async function copy(src: string, dst: string, options: CopyOptions = {}, side = INSECURE) {
  const srcPool = new ClientPool(side);
  const destPool = new ClientPool(side);
  const source = await openSource(src, srcPool);
  try {
    return await copyImage(source, await openDestination(dst, destPool), options);
  } finally {
    await source.close();
    await srcPool.close();
    await destPool.close();
  }
}

async function withServers(
  count: number,
  body: (servers: TestServer[]) => Promise<void>,
  config?: Partial<Config>,
): Promise<void> {
  const servers: TestServer[] = [];
  try {
    for (let i = 0; i < count; i++) servers.push(await startServer(config ? { config } : {}));
    await body(servers);
  } finally {
    for (const server of servers) await server.close();
  }
}

async function manifestStatus(base: string, name: string, reference: string): Promise<number> {
  const response = await fetch(`${base}/v2/${name}/manifests/${reference}`, {
    method: "HEAD",
    headers: { Accept: [MEDIA.ociIndex, MEDIA.ociManifest, MEDIA.dockerManifest].join(", ") },
  });
  await response.body?.cancel();
  return response.status;
}

async function seedIndex(base: string) {
  const children: TestImage[] = [
    await pushImage(base, "src/app", "amd64", { seed: 1 }),
    await pushImage(base, "src/app", "arm64", { seed: 2 }),
  ];
  const { index, signature } = await pushIndexAndSignature(base, "src/app", "multi", children);
  return { children, index: digestOf(index), signature: digestOf(signature) };
}

Deno.test("copy: an index with its children and referrers crosses berth to berth with every digest", async () => {
  await withServers(2, async ([a, b]) => {
    const seeded = await seedIndex(a!.url);
    const result = await copy(
      `docker://${a!.host}/src/app:multi`,
      `docker://${b!.host}/dst/app:v1`,
      {
        referrers: true,
        tags: ["v1", "extra"],
      },
    );
    assert.equal(result.digest, seeded.index);
    assert.equal(result.manifests, 4);
    assert.equal(result.referrers, 1);
    const got = await fetch(`${b!.url}/v2/dst/app/manifests/extra`, {
      headers: { Accept: MEDIA.ociIndex },
    });
    assert.equal(digestOf(await bytesOf(got)), seeded.index);
    for (const child of seeded.children) {
      assert.equal(await manifestStatus(b!.url, "dst/app", child.digest), 200);
    }
    const referrers = await fetch(`${b!.url}/v2/dst/app/referrers/${seeded.children[0]!.digest}`);
    const listed = (await referrers.json()).manifests.map((m: { digest: string }) => m.digest);
    assert.deepEqual(listed, [seeded.signature]);
    // A second copy finds every blob in place.
    const again = await copy(`docker://${a!.host}/src/app:multi`, `docker://${b!.host}/dst/app:v1`);
    assert.equal(again.blobs.copied, 0);
    assert.equal(again.blobs.existing, again.blobs.total);
  });
});

Deno.test("copy: --platform copies one child unchanged; same registry mounts instead of copying", async () => {
  await withServers(1, async ([a]) => {
    await seedIndex(a!.url); // its index entries carry no platform
    await assert.rejects(
      copy(`docker://${a!.host}/src/app:multi`, `docker://${a!.host}/other/app:x`, {
        platform: { os: "linux", architecture: "amd64" },
      }),
      /no image for platform linux\/amd64/,
    );
  });
  await withServers(1, async ([a]) => {
    const amd64 = await pushImage(a!.url, "src/app", "amd64", { seed: 1 });
    const arm64 = await pushImage(a!.url, "src/app", "arm64", { seed: 2 });
    const index = new TextEncoder().encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA.ociIndex,
      manifests: [
        {
          mediaType: MEDIA.ociManifest,
          digest: amd64.digest,
          size: amd64.bytes.length,
          platform: { os: "linux", architecture: "amd64" },
        },
        {
          mediaType: MEDIA.ociManifest,
          digest: arm64.digest,
          size: arm64.bytes.length,
          platform: { os: "linux", architecture: "arm64" },
        },
      ],
    }));
    const put = await fetch(`${a!.url}/v2/src/app/manifests/multi`, {
      method: "PUT",
      headers: { "Content-Type": MEDIA.ociIndex },
      body: index,
    });
    assert.equal(put.status, 201);
    await put.body?.cancel();
    const result = await copy(
      `docker://${a!.host}/src/app:multi`,
      `docker://${a!.host}/other/app:arm`,
      {
        platform: { os: "linux", architecture: "arm64" },
      },
    );
    assert.equal(result.digest, arm64.digest);
    assert.equal(result.blobs.mounted, 2);
    assert.equal(await manifestStatus(a!.url, "other/app", amd64.digest), 404);
  });
});

Deno.test("copy: a registry serving wrong bytes fails the copy naming the digest, nothing is written", async () => {
  await withServers(2, async ([a, b]) => {
    const image = await pushImage(a!.url, "src/app", "v1", { seed: 3, layerSize: 100_000 });
    const layer = digestOf(image.layer);
    // A proxy in front of `a` that flips a byte of the layer.
    const liar = await startFake(async (request, url) => {
      const upstream = await fetch(`${a!.url}${url.pathname}${url.search}`, {
        method: request.method,
        headers: request.headers,
      });
      if (!url.pathname.endsWith(layer)) return upstream;
      const bytes = await bytesOf(upstream);
      bytes[500] = bytes[500]! ^ 0xff;
      return new Response(bytes as Uint8Array<ArrayBuffer>, { headers: upstream.headers });
    });
    try {
      await assert.rejects(
        copy(`docker://${liar.host}/src/app:v1`, `docker://${b!.host}/dst/app:v1`),
        (error: Error) => {
          assert.ok(
            error instanceof ClientError && error.kind === "digest-mismatch",
            error.message,
          );
          assert.match(error.message, new RegExp(layer));
          return true;
        },
      );
      assert.equal(await manifestStatus(b!.url, "dst/app", "v1"), 404);
      const head = await fetch(`${b!.url}/v2/dst/app/blobs/${layer}`, { method: "HEAD" });
      assert.equal(head.status, 404);
      const result = await berth([
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        `docker://${liar.host}/src/app:v1`,
        `docker://${b!.host}/dst/app:v1`,
      ]);
      assert.equal(result.code, 1);
      assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
      assert.match(result.stderr, new RegExp(`berth copy: .*${layer}`));
    } finally {
      await liar.close();
    }
  });
});

Deno.test("copy: schema 1 sources are refused with a clear message", async () => {
  const schema1 = new TextEncoder().encode(
    JSON.stringify({ schemaVersion: 1, name: "a", tag: "v1", fsLayers: [] }),
  );
  const server = await startFake((_request, url) =>
    url.pathname === "/v2/" ? new Response("{}") : new Response(schema1, {
      headers: { "Content-Type": "application/vnd.docker.distribution.manifest.v1+prettyjws" },
    })
  );
  try {
    await withServers(1, async ([b]) => {
      await assert.rejects(
        copy(`docker://${server.host}/old/app:v1`, `docker://${b!.host}/dst/app:v1`),
        /schema 1 images are not supported/,
      );
    });
  } finally {
    await server.close();
  }
});

Deno.test("copy: an interrupted copy leaves no tag at the destination", async () => {
  await withServers(2, async ([a, b]) => {
    const image = await pushImage(a!.url, "src/app", "v1", { seed: 4, layerSize: 200_000 });
    const layer = digestOf(image.layer);
    const slow = await startFake(async (request, url) => {
      const upstream = await fetch(`${a!.url}${url.pathname}${url.search}`, {
        method: request.method,
        headers: request.headers,
      });
      if (!url.pathname.endsWith(layer)) return upstream;
      const bytes = await bytesOf(upstream);
      let sent = 0;
      return new Response(
        new ReadableStream({
          async pull(controller) {
            await new Promise((r) => setTimeout(r, 20));
            if (sent >= bytes.length) return controller.close();
            controller.enqueue(bytes.slice(sent, sent + 1000));
            sent += 1000;
          },
        }),
        { headers: upstream.headers },
      );
    });
    try {
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 300);
      await assert.rejects(
        copy(`docker://${slow.host}/src/app:v1`, `docker://${b!.host}/dst/app:v1`, {
          signal: controller.signal,
        }),
        (error: Error) => error instanceof ClientError && error.kind === "aborted",
      );
      assert.equal(await manifestStatus(b!.url, "dst/app", "v1"), 404);
    } finally {
      await slow.close();
    }
  });
});

for (const mode of ["token", "basic"] as const) {
  Deno.test(`copy: ${mode} auth: credentials from --dest-creds or an auth file; refusals are one line`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "berth-copy-auth-" });
    const auth: Config["auth"] = {
      htpasswd: { realm: "berth-test", path: await writeHtpasswd(dir) },
      policy: structuredClone(POLICY),
      ...(mode === "token" && { token: { service: "berth-test", issuer: "berth" } }),
    };
    try {
      await withServers(1, async ([open]) => {
        const secured = await startServer({ config: { auth } });
        try {
          const image = await pushImage(open!.url, "src/app", "v1", { seed: 5 });
          const src = `docker://${open!.host}/src/app:v1`;
          const dst = `docker://${secured.host}/team/app:v1`;
          const denied = await berth([
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            src,
            dst,
          ]);
          assert.equal(denied.code, 1);
          assert.equal(denied.stderr.trim().split("\n").length, 1, denied.stderr);
          assert.match(denied.stderr, /authentication|credentials/);
          assert.doesNotMatch(denied.stderr, /\bat .*\.ts:\d+/);
          const wrong = await berth([
            "copy",
            "--tls-verify=false",
            "--dest-creds",
            "bob:wrong",
            src,
            dst,
          ]);
          assert.equal(wrong.code, 1);
          assert.match(wrong.stderr, /refused|authentication/);
          const ok = await berth([
            "copy",
            "--tls-verify=false",
            "--dest-creds",
            "bob:bob-secret",
            "--json",
            src,
            dst,
          ]);
          assert.equal(ok.code, 0, ok.stderr);
          assert.equal(JSON.parse(ok.stdout).digest, image.digest);
          // An auth file (docker's config.json format) works too.
          await Deno.writeTextFile(
            `${dir}/auth.json`,
            JSON.stringify({ auths: { [secured.host]: { auth: btoa("alice:alice-secret") } } }),
          );
          const viaFile = await berth([
            "copy",
            "--tls-verify=false",
            "--authfile",
            `${dir}/auth.json`,
            "-q",
            src,
            `docker://${secured.host}/any/where:v2`,
          ]);
          assert.equal(viaFile.code, 0, viaFile.stderr);
          assert.equal(viaFile.stdout, "");
        } finally {
          await secured.close();
        }
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("copy: the command's usage errors exit 2, missing images exit 1 with one line", async () => {
  const usage = await berth(["copy", "only-one-arg"]);
  assert.equal(usage.code, 2);
  const bad = await berth(["copy", "nosuch:x", "oci:/tmp/x"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown transport/);
  await withServers(1, async ([a]) => {
    const missing = await berth([
      "copy",
      "--src-tls-verify=false",
      `docker://${a!.host}/no/such:v1`,
      "oci:/tmp/never",
    ]);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr.trim().split("\n").length, 1);
    assert.match(missing.stderr, /no\/such:v1: not found/);
  });
});

Deno.test("copy: a destination named by digest must receive exactly that image", async () => {
  await withServers(1, async ([a]) => {
    const image = await pushImage(a!.url, "src/app", "v1", { seed: 11 });
    const other = await pushImage(a!.url, "src/app", "v2", { seed: 12 });
    const ok = await copy(
      `docker://${a!.host}/src/app:v1`,
      `docker://${a!.host}/by/digest@${image.digest}`,
    );
    assert.equal(ok.digest, image.digest);
    await assert.rejects(
      copy(`docker://${a!.host}/src/app:v1`, `docker://${a!.host}/by/digest@${other.digest}`),
      /not sha256:/,
    );
  });
});

Deno.test("copy: into a new repository no blob is looked for nor a mount probed; into an existing one that mounts from itself, HEADs stop after the first upload; a second copy uploads nothing", async () => {
  await withServers(1, async ([a]) => {
    const pushMany = async (repository: string, seed: number) => {
      const config = text(JSON.stringify({ architecture: "amd64", os: "linux", seed }));
      const layers = [1, 2, 3, 4, 5, 6, 7].map((n) => randomBytes(2000, seed + n));
      for (const blob of [config, ...layers]) await pushBlob(a!.url, repository, blob);
      const manifest = text(JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA.ociManifest,
        config: descriptor(MEDIA.ociConfig, config),
        layers: layers.map((layer) => descriptor(MEDIA.ociLayer, layer)),
      }));
      assert.equal(
        (await putManifest(a!.url, repository, "v1", manifest, MEDIA.ociManifest)).status,
        201,
      );
    };
    await pushMany("src/many", 60);
    await pushMany("src/other", 80);
    // The destination: berth in this process behind a recording front.
    const dataDir = await Deno.makeTempDir({ prefix: "berth-copy-" });
    const app = createApp(makeConfig({ dataDir, addr: "127.0.0.1:0" }), {
      logError: () => {},
      log: () => {},
    });
    const front = await startFake((request) =>
      app.handler(request, {} as Deno.ServeHandlerInfo<Deno.NetAddr>)
    );
    try {
      const blobRequests = (from: number) =>
        front.seen.slice(from).filter((s) => s.path.includes("/blobs/"));
      const uploads = { total: 8, copied: 8, existing: 0, mounted: 0 };
      const result = await copy(
        `docker://${a!.host}/src/many:v1`,
        `docker://${front.host}/dst/many:v1`,
        { jobs: 2 },
      );
      assert.deepEqual(result.blobs, { ...uploads, bytes: result.blobs.bytes });
      const first = blobRequests(0);
      // dst/many did not exist (its tags list said NAME_UNKNOWN): no HEAD, no mount, and no probe
      // of how it mounts (this copy checks nothing there).
      assert.equal(front.seen.filter((s) => s.path.includes("/dst/many/tags/list")).length, 1);
      assert.equal(first.filter((s) => s.method === "HEAD").length, 0);
      assert.equal(first.filter((s) => s.method === "PUT").length, 8);
      assert.equal(first.filter((s) => s.path.includes("mount=")).length, 0);
      assert.equal(await manifestStatus(front.url, "dst/many", "v1"), 200);

      // Another image into the repository that now exists: HEADs until the probe says it mounts.
      let start = front.seen.length;
      const other = await copy(
        `docker://${a!.host}/src/other:v1`,
        `docker://${front.host}/dst/many:v2`,
        { jobs: 1 },
      );
      assert.deepEqual(other.blobs, { ...uploads, bytes: other.blobs.bytes });
      const next = blobRequests(start);
      // One worker: its HEADs run up to `jobs` blobs ahead, so two before the probe is answered.
      assert.equal(next.filter((s) => s.method === "HEAD").length, 2);
      assert.equal(next.filter((s) => s.method === "PUT").length, 8);
      assert.equal(next.filter((s) => s.path.includes("mount=")).length, 1 + 6); // probe + 6 blobs

      start = front.seen.length;
      const second = await copy(
        `docker://${a!.host}/src/many:v1`,
        `docker://${front.host}/dst/many:v1`,
        { jobs: 2 },
      );
      assert.equal(second.blobs.existing, 8);
      assert.equal(second.blobs.copied, 0);
      // Nothing uploaded, so nothing learned: every blob was a HEAD.
      assert.deepEqual(blobRequests(start).map((s) => s.method), Array(8).fill("HEAD"));
    } finally {
      await front.close();
      await app.close();
      await Deno.remove(dataDir, { recursive: true });
    }
  });
});
