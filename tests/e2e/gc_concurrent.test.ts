/**
 * Online garbage collection under load: collections run back to back while many images (shared
 * and unique layers, indexes, referrers) are pushed concurrently the way clients push (HEAD,
 * mount, upload, manifest). Every push must succeed and every image must then pull completely
 * with skopeo; after some deletes, a collection removes exactly the deleted images' own blobs.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { GcReport } from "../../src/services/gc.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { run, skipWithout } from "../helpers/tools.ts";
import { descriptor, digestOf, MEDIA, randomBytes, text } from "../helpers/registry.ts";

const GRACE_MS = 3000;
const REPOS = ["team/api", "team/web", "tools"];
const IMAGES = 24;
const CONCURRENCY = 6;

interface Pushed {
  repo: string;
  tag: string;
  digest: string;
  /** Blobs only this image uses (config, unique layer, manifest). */
  own: { digest: string; size: number }[];
  /** Kept (pulled at the end) or deleted. */
  deleted: boolean;
  index?: boolean;
}

/** Push one blob like a client: HEAD, else mount from `base`, else upload it. */
async function pushBlobLikeClient(
  server: TestServer,
  repo: string,
  bytes: Uint8Array<ArrayBuffer>,
): Promise<void> {
  const digest = digestOf(bytes);
  const head = await fetch(`${server.url}/v2/${repo}/blobs/${digest}`, { method: "HEAD" });
  if (head.status === 200) return;
  const mount = await fetch(`${server.url}/v2/${repo}/blobs/uploads/?mount=${digest}&from=base`, {
    method: "POST",
  });
  await mount.body?.cancel();
  if (mount.status === 201) return;
  const location = mount.headers.get("Location");
  assert.ok(mount.status === 202 && location, `mount answered ${mount.status}`);
  const url = new URL(location, server.url);
  url.searchParams.set("digest", digest);
  const put = await fetch(url, {
    method: "PUT",
    headers: { "Content-Type": "application/octet-stream" },
    body: bytes,
  });
  await put.body?.cancel();
  assert.equal(put.status, 201, `blob upload of ${digest} in ${repo}`);
}

async function putManifest(
  server: TestServer,
  repo: string,
  ref: string,
  bytes: Uint8Array<ArrayBuffer>,
  type: string,
): Promise<void> {
  const response = await fetch(`${server.url}/v2/${repo}/manifests/${ref}`, {
    method: "PUT",
    headers: { "Content-Type": type },
    body: bytes,
  });
  const body = await response.text();
  assert.equal(response.status, 201, `manifest ${repo}:${ref}: ${body}`);
}

/** Build and push image `i`: a shared base layer, a unique layer, a unique config. */
async function pushImage(
  server: TestServer,
  repo: string,
  i: number,
  bases: Uint8Array<ArrayBuffer>[],
  ref?: string,
): Promise<{ digest: string; bytes: Uint8Array<ArrayBuffer>; own: Pushed["own"] }> {
  const base = bases[i % bases.length]!;
  const layer = randomBytes(8_000 + i * 97, 1000 + i);
  const config = text(JSON.stringify({ architecture: "amd64", os: "linux", image: i }));
  for (const blob of [base, layer, config]) await pushBlobLikeClient(server, repo, blob);
  const manifest = text(JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA.ociManifest,
    config: descriptor(MEDIA.ociConfig, config),
    layers: [descriptor(MEDIA.ociLayer, base), descriptor(MEDIA.ociLayer, layer)],
  }));
  const digest = digestOf(manifest);
  await putManifest(server, repo, ref ?? digest, manifest, MEDIA.ociManifest);
  const own = [config, layer, manifest].map((b) => ({ digest: digestOf(b), size: b.byteLength }));
  return { digest, bytes: manifest, own };
}

/** Push a signature artifact referring to a manifest (by digest, untagged). */
async function pushSignature(
  server: TestServer,
  repo: string,
  subject: Uint8Array<ArrayBuffer>,
  i: number,
): Promise<string> {
  const empty = text("{}");
  const payload = text(`signature ${i}`);
  for (const blob of [empty, payload]) await pushBlobLikeClient(server, repo, blob);
  const manifest = text(JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA.ociManifest,
    artifactType: "application/vnd.example.signature",
    config: descriptor(MEDIA.ociEmpty, empty),
    layers: [descriptor("application/octet-stream", payload)],
    subject: descriptor(MEDIA.ociManifest, subject),
  }));
  await putManifest(server, repo, digestOf(manifest), manifest, MEDIA.ociManifest);
  return digestOf(manifest);
}

async function collect(server: TestServer): Promise<GcReport> {
  const response = await fetch(`${server.url}/admin/gc`, { method: "POST" });
  assert.equal(response.status, 200);
  return await response.json() as GcReport;
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

function blobPath(server: TestServer, digest: string): string {
  const [alg, hex] = digest.split(":") as [string, string];
  return `${server.dataDir}/docker/registry/v2/blobs/${alg}/${hex.slice(0, 2)}/${hex}/data`;
}

Deno.test({
  name:
    "e2e(gc): online collection in a loop during concurrent pushes loses nothing; deletes free exactly their blobs",
  ignore: skipWithout("skopeo"),
  async fn() {
    const work = await Deno.makeTempDir({ prefix: "berth-gc-e2e-" });
    const server = await startServer({
      config: { gc: { intervalMs: 0, gracePeriodMs: GRACE_MS, adminEndpoint: true } },
    });
    try {
      // Shared base layers, uploaded long ago and referenced by nothing yet: only the handshake
      // with the pushes that HEAD or mount them keeps a collection from taking them.
      const bases = [1, 2, 3].map((seed) => randomBytes(30_000 + seed, seed));
      for (const base of bases) await pushBlobLikeClient(server, "base", base);
      const old = new Date(Date.now() - 3600_000);
      for (const base of bases) await Deno.utime(blobPath(server, digestOf(base)), old, old);

      let pushing = true;
      let collections = 0;
      const loop = (async () => {
        while (pushing) {
          await collect(server);
          collections++;
        }
      })();

      const pushed: Pushed[] = [];
      const signatures = new Map<string, string>();
      const jobs = Array.from({ length: IMAGES }, (_, i) => async () => {
        const repo = REPOS[i % REPOS.length]!;
        if (i % 6 === 5) {
          // An index over two children pushed by digest, tagged.
          const a = await pushImage(server, repo, i, bases);
          const b = await pushImage(server, repo, i + 100, bases);
          const index = text(JSON.stringify({
            schemaVersion: 2,
            mediaType: MEDIA.ociIndex,
            manifests: [a, b].map((c, k) => ({
              ...descriptor(MEDIA.ociManifest, c.bytes),
              platform: { architecture: k ? "arm64" : "amd64", os: "linux" },
            })),
          }));
          await putManifest(server, repo, `multi-${i}`, index, MEDIA.ociIndex);
          pushed.push({
            repo,
            tag: `multi-${i}`,
            digest: digestOf(index),
            own: [],
            deleted: false,
            index: true,
          });
          return;
        }
        const image = await pushImage(server, repo, i, bases, `v${i}`);
        const entry: Pushed = {
          repo,
          tag: `v${i}`,
          digest: image.digest,
          own: image.own,
          deleted: false,
        };
        pushed.push(entry);
        if (i % 4 === 1) {
          signatures.set(image.digest, await pushSignature(server, repo, image.bytes, i));
        }
      });
      const workers = Array.from({ length: CONCURRENCY }, async () => {
        for (let job = jobs.shift(); job; job = jobs.shift()) await job();
      });
      try {
        await Promise.all(workers);
      } finally {
        pushing = false;
        await loop;
      }
      assert.ok(collections >= 2, `collections ran during the pushes (${collections})`);

      // Nothing pushed is garbage: once everything is older than the grace period, a collection
      // finds nothing to remove.
      await new Promise((resolve) => setTimeout(resolve, GRACE_MS + 100));
      const idle = await collect(server);
      assert.deepEqual(idle.blobsDeleted, [], "a collection after the pushes removes nothing");

      // Delete some plain images (not signed, not in an index) by digest.
      const victims = pushed.filter((p) => !p.index && !signatures.has(p.digest)).slice(0, 5);
      for (const victim of victims) {
        const response = await fetch(`${server.url}/v2/${victim.repo}/manifests/${victim.digest}`, {
          method: "DELETE",
        });
        await response.body?.cancel();
        assert.equal(response.status, 202);
        victim.deleted = true;
      }
      await new Promise((resolve) => setTimeout(resolve, GRACE_MS + 100));
      const report = await collect(server);
      const expected = victims.flatMap((v) => v.own);
      assert.deepEqual(
        report.blobsDeleted.map((b) => b.digest).sort(),
        expected.map((b) => b.digest).sort(),
      );
      assert.equal(report.bytesFreed, expected.reduce((sum, b) => sum + b.size, 0));
      for (const blob of expected) assert.equal(await exists(blobPath(server, blob.digest)), false);

      // Every image not deleted pulls completely; skopeo verifies every digest.
      for (const image of pushed.filter((p) => !p.deleted)) {
        const ref = `docker://${server.host}/${image.repo}:${image.tag}`;
        const dest = `${work}/${image.tag}`;
        if (image.index) {
          await run("skopeo", ["copy", "--all", "--src-tls-verify=false", ref, `oci:${dest}:x`]);
        } else {
          await run("skopeo", ["copy", "--src-tls-verify=false", ref, `dir:${dest}`]);
        }
        const signature = signatures.get(image.digest);
        if (signature) {
          const listed = await (await fetch(
            `${server.url}/v2/${image.repo}/referrers/${image.digest}`,
          )).json() as { manifests: { digest: string }[] };
          assert.deepEqual(listed.manifests.map((m) => m.digest), [signature]);
        }
      }
      for (const victim of victims) {
        const response = await fetch(`${server.url}/v2/${victim.repo}/manifests/${victim.tag}`);
        await response.body?.cancel();
        assert.equal(response.status, 404);
      }
    } finally {
      await server.close();
      await Deno.remove(work, { recursive: true });
    }
  },
});
