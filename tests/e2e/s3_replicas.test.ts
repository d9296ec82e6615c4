/**
 * Stateless replicas over one S3 bucket (a real Ceph radosgw): chunked uploads whose requests
 * alternate replicas, tags and the catalog seen at once by every replica, skopeo through a
 * round-robin proxy, a replica killed in the middle of a PATCH, and distribution 2.8.2 serving the
 * same bucket.
 *
 * @module
 */
import assert from "node:assert/strict";
import { configToEnv } from "../../src/config_file.ts";
import { type ChildServer, spawnServer, startServer, type TestServer } from "../helpers/server.ts";
import {
  roundRobin,
  s3Config,
  s3Options,
  skipWithoutS3,
  startS3Distribution,
  tempBucket,
} from "../helpers/s3.ts";
import { S3Driver } from "../../src/storage/drivers/s3.ts";
import { LINK_WINDOW_MS } from "../../src/services/registry.ts";
import { StorageLease } from "../../src/storage/lease.ts";
import { run, skipWithout } from "../helpers/tools.ts";
import { buildLayout, layoutRefs } from "../helpers/images.ts";
import { digestOf, expectStatus, MEDIA, pushImage, randomBytes } from "../helpers/registry.ts";

const MIB = 1024 * 1024;
const ignoreS3 = skipWithoutS3();

/** Run `fn` with `n` in-process berth servers on one fresh bucket. */
async function withReplicas(
  n: number,
  fn: (servers: TestServer[], bucket: string) => Promise<void>,
): Promise<void> {
  const bucket = await tempBucket();
  const servers: TestServer[] = [];
  try {
    for (let i = 0; i < n; i++) {
      servers.push(await startServer({ config: { storage: "s3", s3: s3Config(bucket.name) } }));
    }
    await fn(servers, bucket.name);
  } finally {
    for (const s of servers) await s.close();
    await bucket.remove();
  }
}

Deno.test({
  name:
    "replicas(s3): two PATCHes of one upload at once on two replicas: one is refused with 416, the session stays whole",
  ignore: ignoreS3,
  fn: () =>
    withReplicas(2, async ([a, b]) => {
      const blob = randomBytes(14 * MIB + 3, 31);
      const digest = digestOf(blob);
      const start = await fetch(`${a!.url}/v2/rep/race/blobs/uploads/`, { method: "POST" });
      await expectStatus(start, 202);
      const location = start.headers.get("location")!;
      // The first PATCH sends 6 MiB, then waits (holding the session) until the second is answered.
      const { promise: holding, resolve: held } = Promise.withResolvers<void>();
      const { promise: go, resolve: release } = Promise.withResolvers<void>();
      let sent = 0;
      const first = fetch(`${a!.url}${location}`, {
        method: "PATCH",
        headers: { "Content-Type": "application/octet-stream" },
        body: new ReadableStream<Uint8Array>({
          async pull(controller) {
            if (sent === 6 * MIB) {
              held();
              await go;
            }
            if (sent >= 8 * MIB) return controller.close();
            controller.enqueue(blob.slice(sent, sent + MIB));
            sent += MIB;
          },
        }),
      });
      await holding;
      // The first part (5 MiB) is recorded: the first PATCH is writing.
      let range = "";
      for (let i = 0; i < 200 && range !== `0-${5 * MIB - 1}`; i++) {
        const status = await fetch(`${b!.url}${location}`);
        await status.body?.cancel();
        range = status.headers.get("range") ?? "";
        if (range !== `0-${5 * MIB - 1}`) await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(range, `0-${5 * MIB - 1}`);
      // Other bytes at the offset the other replica reports, through it: refused, nothing written.
      const second = await fetch(`${b!.url}${location}`, {
        method: "PATCH",
        headers: {
          "Content-Type": "application/octet-stream",
          "Content-Range": `${5 * MIB}-${6 * MIB - 1}`,
        },
        body: randomBytes(MIB, 99),
      });
      assert.equal(second.status, 416);
      assert.equal((await second.json()).errors[0].code, "BLOB_UPLOAD_INVALID");
      release();
      const firstAnswer = await first;
      await expectStatus(firstAnswer, 202);
      assert.equal(firstAnswer.headers.get("range"), `0-${8 * MIB - 1}`);
      // The session continues from the first PATCH on the other replica and commits the right bytes.
      const next = firstAnswer.headers.get("location")!;
      const rest = await fetch(`${b!.url}${next}`, {
        method: "PATCH",
        headers: {
          "Content-Type": "application/octet-stream",
          "Content-Range": `${8 * MIB}-${blob.length - 1}`,
        },
        body: blob.slice(8 * MIB),
      });
      await expectStatus(rest, 202);
      const last = rest.headers.get("location")!;
      const sep = last.includes("?") ? "&" : "?";
      await expectStatus(
        await fetch(`${a!.url}${last}${sep}digest=${digest}`, { method: "PUT" }),
        201,
      );
      const got = await fetch(`${b!.url}/v2/rep/race/blobs/${digest}`);
      assert.equal(digestOf(new Uint8Array(await got.arrayBuffer())), digest);
    }),
});

Deno.test({
  name:
    "replicas(s3): a blob unlinked on one replica is refused there at once, and by the others once the link window is over",
  ignore: ignoreS3,
  fn: async () => {
    const bucket = await tempBucket();
    const servers: TestServer[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const config = { storage: "s3" as const, s3: s3Config(bucket.name), deleteEnabled: true };
        servers.push(await startServer({ config }));
      }
      const [a, b] = servers as [TestServer, TestServer];
      const blob = randomBytes(4096, 41);
      const digest = digestOf(blob);
      const pushed = await fetch(`${a.url}/v2/rep/gone/blobs/uploads/?digest=${digest}`, {
        method: "POST",
        body: blob,
      });
      await expectStatus(pushed, 201);
      const get = (server: TestServer) =>
        fetch(`${server.url}/v2/rep/gone/blobs/${digest}`, { redirect: "manual" });
      await expectStatus(await get(b), 307);
      await expectStatus(
        await fetch(`${a.url}/v2/rep/gone/blobs/${digest}`, { method: "DELETE" }),
        202,
      );
      await expectStatus(await get(a), 404);
      // b read the link before the unlink: it may serve the blob until its window is over, no longer.
      await new Promise((resolve) => setTimeout(resolve, LINK_WINDOW_MS));
      await expectStatus(await get(b), 404);
    } finally {
      for (const s of servers) await s.close();
      await bucket.remove();
    }
  },
});

Deno.test({
  name: "replicas(s3): a chunked upload whose PATCHes alternate replicas completes on a third",
  ignore: ignoreS3,
  fn: () =>
    withReplicas(3, async ([a, b, c]) => {
      const blob = randomBytes(12 * MIB + 777, 21);
      const digest = digestOf(blob);
      const start = await fetch(`${a!.url}/v2/rep/blob/blobs/uploads/`, { method: "POST" });
      await expectStatus(start, 202);
      let location = start.headers.get("location")!;
      const cuts = [0, 3 * MIB, 9 * MIB, blob.length];
      const replicas = [b!, a!, b!];
      for (let i = 0; i < 3; i++) {
        const piece = blob.slice(cuts[i], cuts[i + 1]);
        const response = await fetch(`${replicas[i]!.url}${location}`, {
          method: "PATCH",
          headers: {
            "Content-Type": "application/octet-stream",
            "Content-Range": `${cuts[i]}-${cuts[i + 1]! - 1}`,
          },
          body: piece,
        });
        await expectStatus(response, 202);
        assert.equal(response.headers.get("range"), `0-${cuts[i + 1]! - 1}`);
        location = response.headers.get("location")!;
      }
      const status = await fetch(`${c!.url}${location}`);
      await expectStatus(status, 204);
      assert.equal(status.headers.get("range"), `0-${blob.length - 1}`);
      const sep = location.includes("?") ? "&" : "?";
      const done = await fetch(`${c!.url}${location}${sep}digest=${digest}`, { method: "PUT" });
      await expectStatus(done, 201);
      for (const server of [a!, b!, c!]) {
        const head = await fetch(`${server.url}/v2/rep/blob/blobs/${digest}`, { method: "HEAD" });
        await expectStatus(head, 200);
        assert.equal(head.headers.get("content-length"), String(blob.length));
      }
      const got = await fetch(`${a!.url}/v2/rep/blob/blobs/${digest}`);
      assert.equal(got.status, 200, "redirects are followed by fetch");
      assert.equal(digestOf(new Uint8Array(await got.arrayBuffer())), digest);
    }),
});

Deno.test({
  name: "replicas(s3): a tag pushed on one replica is seen at once by the others, with the catalog",
  ignore: ignoreS3,
  fn: () =>
    withReplicas(2, async ([a, b]) => {
      for (let round = 0; round < 3; round++) {
        const image = await pushImage(a!.url, "rep/app", `v${round}`, { seed: 40 + round });
        const got = await fetch(`${b!.url}/v2/rep/app/manifests/v${round}`, {
          headers: { Accept: MEDIA.ociManifest },
        });
        await expectStatus(got, 200);
        assert.equal(got.headers.get("docker-content-digest"), image.digest);
        // Retag on b; a sees it at once.
        const again = await fetch(`${b!.url}/v2/rep/app/manifests/latest`, {
          method: "PUT",
          headers: { "Content-Type": MEDIA.ociManifest },
          body: image.bytes,
        });
        await expectStatus(again, 201);
        const latest = await fetch(`${a!.url}/v2/rep/app/manifests/latest`, {
          method: "HEAD",
          headers: { Accept: MEDIA.ociManifest },
        });
        await expectStatus(latest, 200);
        assert.equal(latest.headers.get("docker-content-digest"), image.digest);
      }
      await pushImage(b!.url, "rep/other", "x", { seed: 50 });
      for (const server of [a!, b!]) {
        const tags = await (await fetch(`${server.url}/v2/rep/app/tags/list`)).json();
        assert.deepEqual(tags.tags.sort(), ["latest", "v0", "v1", "v2"]);
        const catalog = await (await fetch(`${server.url}/v2/_catalog`)).json();
        assert.deepEqual(catalog.repositories, ["rep/app", "rep/other"]);
      }
      const deleted = await fetch(`${a!.url}/v2/rep/app/manifests/v0`, { method: "DELETE" });
      assert.ok(deleted.status === 202 || deleted.status === 400, `tag delete: ${deleted.status}`);
      await deleted.body?.cancel();
    }),
});

Deno.test({
  name: "e2e(s3): skopeo pushes and pulls through two replicas behind a round-robin proxy",
  ignore: ignoreS3 || skipWithout("skopeo", "umoci"),
  async fn() {
    const work = await Deno.makeTempDir({ prefix: "berth-s3-skopeo-" });
    try {
      const layout = await buildLayout(`${work}/layout`, { seed: 61 });
      await withReplicas(2, async ([a, b]) => {
        const proxy = roundRobin([a!.url, b!.url]);
        try {
          for (const [tag, all] of [["amd64", false], ["multi", true]] as const) {
            await run("skopeo", [
              "copy",
              ...(all ? ["--all"] : []),
              "--dest-tls-verify=false",
              `oci:${layout.dir}:${tag}`,
              `docker://${proxy.host}/rr/app:${tag}`,
            ]);
            await run("skopeo", [
              "copy",
              ...(all ? ["--all"] : []),
              "--src-tls-verify=false",
              `docker://${proxy.host}/rr/app:${tag}`,
              `oci:${work}/pulled:${tag}`,
            ]);
          }
          const pulled = await layoutRefs(`${work}/pulled`);
          assert.equal(pulled.amd64, layout.refs.amd64);
          assert.equal(pulled.multi, layout.refs.multi);
        } finally {
          await proxy.close();
        }
      });
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "e2e(s3): distribution 2.8.2 serves what berth wrote in the bucket, and the other way round",
  ignore: ignoreS3 || skipWithout("skopeo", "umoci", "docker-registry"),
  async fn() {
    const work = await Deno.makeTempDir({ prefix: "berth-s3-interop-" });
    const bucket = await tempBucket();
    try {
      const layout = await buildLayout(`${work}/layout`, { seed: 62 });
      const root = "shared/root";
      const berth = await startServer({
        config: { storage: "s3", s3: s3Config(bucket.name, { rootDirectory: root }) },
      });
      const distribution = await startS3Distribution(bucket.name, root);
      try {
        const copy = (from: string, to: string, all = false) =>
          run("skopeo", [
            "copy",
            ...(all ? ["--all"] : []),
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            from,
            to,
          ]);
        // berth writes, distribution reads.
        await copy(`oci:${layout.dir}:amd64`, `docker://${berth.host}/from/berth:v1`);
        await copy(`oci:${layout.dir}:multi`, `docker://${berth.host}/from/berth:multi`, true);
        await copy(`docker://${distribution.host}/from/berth:v1`, `oci:${work}/a:v1`);
        await copy(`docker://${distribution.host}/from/berth:multi`, `oci:${work}/a:multi`, true);
        const a = await layoutRefs(`${work}/a`);
        assert.equal(a.v1, layout.refs.amd64);
        assert.equal(a.multi, layout.refs.multi);
        // distribution writes, berth reads.
        await copy(`oci:${layout.dir}:amd64`, `docker://${distribution.host}/from/dist:v1`);
        await copy(
          `oci:${layout.dir}:multi`,
          `docker://${distribution.host}/from/dist:multi`,
          true,
        );
        await copy(`docker://${berth.host}/from/dist:v1`, `oci:${work}/b:v1`);
        await copy(`docker://${berth.host}/from/dist:multi`, `oci:${work}/b:multi`, true);
        const b = await layoutRefs(`${work}/b`);
        assert.equal(b.v1, layout.refs.amd64);
        assert.equal(b.multi, layout.refs.multi);
        const tags = await (await fetch(`${berth.url}/v2/from/dist/tags/list`)).json();
        assert.deepEqual(tags.tags.sort(), ["multi", "v1"]);
      } finally {
        await distribution.stop();
        await berth.close();
      }
    } finally {
      await bucket.remove();
      await Deno.remove(work, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "e2e(s3): kill -9 of a replica mid-PATCH: the other serves, the upload resumes, no torn blob",
  ignore: ignoreS3,
  async fn() {
    const bucket = await tempBucket();
    const dataDir = await Deno.makeTempDir({ prefix: "berth-s3-kill-" });
    const env = configToEnv({ storage: "s3", s3: s3Config(bucket.name) })!;
    const replicas: ChildServer[] = [];
    try {
      replicas.push(await spawnServer({ dataDir, env }));
      replicas.push(await spawnServer({ dataDir, env }));
      const [a, b] = replicas as [ChildServer, ChildServer];
      const blob = randomBytes(16 * MIB + 5, 71);
      const digest = digestOf(blob);
      const start = await fetch(`${a.url}/v2/kill/me/blobs/uploads/`, { method: "POST" });
      await expectStatus(start, 202);
      const location = start.headers.get("location")!;
      // Send 12 MiB, then stall: the replica has sent two 5 MiB parts and holds the rest.
      let sent = 0;
      const { promise: stalled, resolve } = Promise.withResolvers<void>();
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (sent >= 12 * MIB) {
            resolve();
            return await new Promise(() => {});
          }
          controller.enqueue(blob.slice(sent, sent + MIB));
          sent += MIB;
        },
      });
      const patch = fetch(`${a.url}${location}`, {
        method: "PATCH",
        headers: { "Content-Type": "application/octet-stream" },
        body,
      }).catch((error) => error);
      await stalled;
      let persisted = 0;
      for (let i = 0; i < 200 && persisted < 10 * MIB; i++) {
        await new Promise((r) => setTimeout(r, 50));
        const status = await fetch(`${b.url}${location}`);
        await status.body?.cancel();
        persisted = Number(status.headers.get("range")?.split("-")[1] ?? -1) + 1;
      }
      assert.equal(persisted, 10 * MIB, "two parts reached the bucket before the kill");
      await a.stop("SIGKILL");
      await patch;
      await body.cancel().catch(() => {});
      // The other replica serves and the upload resumes from what reached the bucket.
      const image = await pushImage(b.url, "kill/other", "v1", { seed: 72 });
      assert.ok(image.digest);
      const status = await fetch(`${b.url}${location}`);
      await expectStatus(status, 204);
      const range = status.headers.get("range")!;
      const have = Number(range.split("-")[1]) + 1;
      assert.equal(have, 10 * MIB);
      // The dead replica's write lease lapses within 10 s: until then the PATCH is refused (416).
      let rest: Response | undefined;
      for (let i = 0; i < 60; i++) {
        rest = await fetch(`${b.url}${location}`, {
          method: "PATCH",
          headers: {
            "Content-Type": "application/octet-stream",
            "Content-Range": `${have}-${blob.length - 1}`,
          },
          body: blob.slice(have),
        });
        if (rest.status !== 416) break;
        await rest.body?.cancel();
        await new Promise((r) => setTimeout(r, 500));
      }
      await expectStatus(rest!, 202);
      const next = rest!.headers.get("location")!;
      const sep = next.includes("?") ? "&" : "?";
      await expectStatus(
        await fetch(`${b.url}${next}${sep}digest=${digest}`, { method: "PUT" }),
        201,
      );
      const got = await fetch(`${b.url}/v2/kill/me/blobs/${digest}`);
      assert.equal(digestOf(new Uint8Array(await got.arrayBuffer())), digest);
    } finally {
      for (const r of replicas) await r.stop("SIGKILL");
      await Deno.remove(dataDir, { recursive: true });
      await bucket.remove();
    }
  },
});

Deno.test({
  name: "s3: blob GET redirects to a presigned URL (Range works there); disabled, berth streams",
  ignore: ignoreS3,
  async fn() {
    const bucket = await tempBucket();
    const servers: TestServer[] = [];
    try {
      const redirecting = await startServer({
        config: { storage: "s3", s3: s3Config(bucket.name) },
      });
      servers.push(redirecting);
      const streaming = await startServer({
        config: { storage: "s3", s3: s3Config(bucket.name, { redirect: false }) },
      });
      servers.push(streaming);
      const image = await pushImage(redirecting.url, "redir/app", "v1", { layerSize: 100_000 });
      const digest = digestOf(image.layer);
      const url = `${redirecting.url}/v2/redir/app/blobs/${digest}`;
      const moved = await fetch(url, { redirect: "manual" });
      await expectStatus(moved, 307);
      const location = moved.headers.get("location")!;
      assert.match(location, /X-Amz-Signature=/);
      assert.equal(moved.headers.get("docker-content-digest"), digest);
      const part = await fetch(location, { headers: { Range: "bytes=10-19" } });
      assert.equal(part.status, 206);
      assert.deepEqual(new Uint8Array(await part.arrayBuffer()), image.layer.slice(10, 20));
      const head = await fetch(url, { method: "HEAD" });
      await expectStatus(head, 200);
      assert.equal(head.headers.get("content-length"), String(image.layer.length));
      const unknown = await fetch(
        `${redirecting.url}/v2/redir/app/blobs/${digestOf(randomBytes(9))}`,
        {
          redirect: "manual",
        },
      );
      await expectStatus(unknown, 404);
      const streamed = await fetch(`${streaming.url}/v2/redir/app/blobs/${digest}`, {
        redirect: "manual",
        headers: { Range: "bytes=5-9" },
      });
      assert.equal(streamed.status, 206);
      assert.deepEqual(new Uint8Array(await streamed.arrayBuffer()), image.layer.slice(5, 10));
    } finally {
      for (const s of servers) await s.close();
      await bucket.remove();
    }
  },
});

Deno.test({
  name: "replicas(s3): GC spares a blob another replica just used; one collector at a time",
  ignore: ignoreS3,
  async fn() {
    const bucket = await tempBucket();
    const servers: TestServer[] = [];
    try {
      const gc = { intervalMs: 0, gracePeriodMs: 1500, adminEndpoint: true };
      for (let i = 0; i < 2; i++) {
        servers.push(
          await startServer({ config: { storage: "s3", s3: s3Config(bucket.name), gc } }),
        );
      }
      const [a, b] = servers as [TestServer, TestServer];
      const collect = async (server: TestServer) => {
        const response = await fetch(`${server.url}/admin/gc`, { method: "POST" });
        assert.equal(response.status, 200);
        return await response.json();
      };
      const blob = randomBytes(2000, 81);
      const digest = digestOf(blob);
      await pushBlobTo(a.url, "gc/app", blob);
      await new Promise((r) => setTimeout(r, 2000));
      // b uses the (old, unreferenced) blob; a's collection must spare it.
      await expectStatus(
        await fetch(`${b.url}/v2/gc/app/blobs/${digest}`, { method: "HEAD" }),
        200,
      );
      const spared = await collect(a);
      assert.equal(spared.blobsDeleted.length, 0, JSON.stringify(spared));
      assert.ok(spared.blobsSpared >= 1);
      // Another process holds the lease: b's collection does nothing.
      const driver = new S3Driver(s3Options(bucket.name));
      const other = new StorageLease(driver, "/docker/registry/v2/_berth/leases/gc", "x", 60_000);
      assert.equal(await other.acquire(), true);
      const skipped = await collect(b);
      assert.match(skipped.skipped, /lease/);
      await other.release();
      // Left alone past the grace period, the blob goes.
      await new Promise((r) => setTimeout(r, 2000));
      const swept = await collect(b);
      assert.deepEqual(swept.blobsDeleted.map((d: { digest: string }) => d.digest), [digest]);
      await expectStatus(
        await fetch(`${a.url}/v2/gc/app/blobs/${digest}`, { method: "HEAD" }),
        404,
      );
    } finally {
      for (const s of servers) await s.close();
      await bucket.remove();
    }
  },
});

async function pushBlobTo(
  base: string,
  name: string,
  bytes: Uint8Array<ArrayBuffer>,
): Promise<void> {
  const response = await fetch(`${base}/v2/${name}/blobs/uploads/?digest=${digestOf(bytes)}`, {
    method: "POST",
    headers: { "Content-Type": "application/octet-stream" },
    body: bytes,
  });
  await expectStatus(response, 201);
}

Deno.test("s3: an unreachable store answers 503 UNAVAILABLE (no stack), and /healthz says so", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const server = await startServer({
    config: {
      storage: "s3",
      s3: {
        accessKey: "a",
        secretKey: "b",
        region: "us-east-1",
        regionEndpoint: `http://127.0.0.1:${port}`,
        bucket: "nowhere",
        rootDirectory: "",
        chunkSize: 5 * MIB,
        forcePathStyle: true,
        multipartCopyThresholdSize: 32 * MIB,
        multipartCopyChunkSize: 32 * MIB,
        redirect: true,
      },
    },
  });
  try {
    const response = await fetch(`${server.url}/v2/some/repo/manifests/latest`);
    assert.equal(response.status, 503);
    const body = await response.json();
    assert.equal(body.errors[0].code, "UNAVAILABLE");
    assert.doesNotMatch(JSON.stringify(body), /at .*\.ts/);
    const health = await fetch(`${server.url}/healthz`);
    assert.equal(health.status, 503);
    await health.body?.cancel();
  } finally {
    await server.close();
  }
});
