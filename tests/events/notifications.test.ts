import assert from "node:assert/strict";
import { parseConfig } from "../../src/config_yaml.ts";
import { EVENTS_MEDIA_TYPE } from "../../src/services/events.ts";
import { freePort } from "../helpers/images.ts";
import {
  descriptor,
  digestOf,
  expectStatus,
  MEDIA,
  pushImage,
  putManifest,
  randomBytes,
  text,
} from "../helpers/registry.ts";
import { spawnServer, startServer } from "../helpers/server.ts";
import { skipWithout } from "../helpers/tools.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

/** A webhook receiver: checks each envelope's content type and keeps its events. */
class Receiver {
  readonly events: Json[] = [];
  readonly headers: Headers[] = [];
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly url: string;
  #waiters: (() => void)[] = [];

  constructor(port = 0) {
    this.#server = Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, async (req) => {
      assert.equal(req.method, "POST");
      assert.equal(req.headers.get("Content-Type"), EVENTS_MEDIA_TYPE);
      const body = await req.json();
      assert.deepEqual(Object.keys(body), ["events"]);
      this.headers.push(req.headers);
      this.events.push(...body.events);
      for (const wake of this.#waiters.splice(0)) wake();
      return new Response(null, { status: 200 });
    });
    this.url = `http://127.0.0.1:${this.#server.addr.port}/events`;
  }

  /** Wait until `test` holds for the events received (20 s at most). */
  async until(test: (events: Json[]) => boolean): Promise<void> {
    const deadline = Date.now() + 20_000;
    while (!test(this.events)) {
      assert.ok(Date.now() < deadline, `events never arrived: ${JSON.stringify(this.events)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 200);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async close(): Promise<void> {
    await this.#server.shutdown();
  }
}

const manifestPushes = (events: Json[]) =>
  events.filter((e) => e.action === "push" && e.target.mediaType !== "application/octet-stream");

/** Push an image the way clients do (POST, then PUT ?digest= with the bytes), as distribution needs. */
async function pushTwoStep(base: string, name: string, tag: string): Promise<void> {
  const config = text(JSON.stringify({ architecture: "amd64", os: "linux" }));
  const layer = randomBytes(1000, 7);
  const manifest = text(JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA.ociManifest,
    config: descriptor(MEDIA.ociConfig, config),
    layers: [descriptor(MEDIA.ociLayer, layer)],
  }));
  for (const blob of [config, layer]) {
    const start = await fetch(`${base}/v2/${name}/blobs/uploads/`, { method: "POST" });
    await expectStatus(start, 202);
    const location = new URL(start.headers.get("Location")!, base);
    location.searchParams.set("digest", digestOf(blob));
    await expectStatus(await fetch(location, { method: "PUT", body: blob }), 201);
  }
  const put = await putManifest(base, name, tag, manifest, MEDIA.ociManifest);
  await expectStatus(put, 201);
}

/** The keys of an event and of its parts, for comparing shapes. */
function shape(event: Json): Record<string, string[]> {
  return {
    event: Object.keys(event).sort(),
    target: Object.keys(event.target).sort(),
    request: Object.keys(event.request).sort(),
    source: Object.keys(event.source).sort(),
  };
}

function notifications(url: string, extra: Record<string, unknown> = {}) {
  return parseConfig(JSON.stringify({
    version: "0.1",
    notifications: {
      endpoints: [{
        name: "hook",
        url,
        headers: { Authorization: ["Bearer secret"] },
        timeout: "2s",
        threshold: 3,
        backoff: "100ms",
        ...extra,
      }],
    },
  })).config.notifications!;
}

Deno.test("notifications: push, pull and delete arrive in distribution's envelope", async () => {
  const receiver = new Receiver();
  const server = await startServer({
    config: { notifications: notifications(receiver.url), deleteEnabled: true },
  });
  try {
    const image = await pushImage(server.url, "team/app", "v1", { docker: true });
    const get = await fetch(`${server.url}/v2/team/app/manifests/v1`, {
      headers: { Accept: MEDIA.dockerManifest, "User-Agent": "test-agent/1" },
    });
    await expectStatus(get, 200);
    await expectStatus(
      await fetch(`${server.url}/v2/team/app/manifests/${image.digest}`, { method: "DELETE" }),
      202,
    );
    await receiver.until((events) => events.some((e) => e.action === "delete"));
    const [push] = manifestPushes(receiver.events);
    assert.ok(push);
    assert.match(push.id, /^[0-9a-f-]{36}$/);
    assert.ok(!Number.isNaN(Date.parse(push.timestamp)));
    assert.deepEqual(push.target, {
      mediaType: MEDIA.dockerManifest,
      size: image.bytes.byteLength,
      digest: image.digest,
      length: image.bytes.byteLength,
      repository: "team/app",
      url: `${server.url}/v2/team/app/manifests/${image.digest}`,
      tag: "v1",
    });
    assert.equal(push.request.method, "PUT");
    assert.equal(push.request.host, server.host);
    assert.match(push.request.addr, /^127\.0\.0\.1/);
    assert.equal(typeof push.request.id, "string");
    assert.match(push.source.instanceID, /^[0-9a-f-]{36}$/);
    const pull = receiver.events.find((e) => e.action === "pull" && e.target.tag === "v1");
    assert.equal(pull?.request.useragent, "test-agent/1");
    const blobPushes = receiver.events.filter((e) =>
      e.action === "push" && e.target.mediaType === "application/octet-stream"
    );
    assert.equal(blobPushes.length, 2);
    const del = receiver.events.find((e) => e.action === "delete");
    assert.deepEqual(del.target, { digest: image.digest, repository: "team/app" });
    // Order is kept: blobs, manifest push, pull, delete.
    const actions = receiver.events.map((e) => e.action);
    assert.deepEqual(actions, ["push", "push", "push", "pull", "delete"]);
    assert.equal(receiver.headers[0]?.get("Authorization"), "Bearer secret");
    assert.equal(new Set(receiver.events.map((e) => e.id)).size, receiver.events.length);
    // The counter moves once the queue files are removed, just after the receiver answered.
    let metrics = "";
    for (let i = 0; i < 50 && !/delivered_total\{endpoint="hook"\} 5$/m.test(metrics); i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 50));
      metrics = await (await fetch(`${server.url}/metrics`)).text();
    }
    assert.match(metrics, /^# TYPE berth_notifications_delivered_total counter$/m);
    assert.match(metrics, /^berth_notifications_delivered_total\{endpoint="hook"\} 5$/m);
    assert.match(metrics, /^berth_notifications_pending\{endpoint="hook"\} 0$/m);
    assert.match(
      metrics,
      /^berth_notifications_last_success_timestamp_seconds\{endpoint="hook"\} [1-9]/m,
    );
  } finally {
    await server.close();
    await receiver.close();
  }
});

Deno.test("notifications: ignored actions and media types are not sent", async () => {
  const receiver = new Receiver();
  const server = await startServer({
    config: {
      notifications: notifications(receiver.url, {
        ignoredmediatypes: ["application/octet-stream"],
        ignore: { actions: ["pull"] },
      }),
    },
  });
  try {
    await pushImage(server.url, "a/b", "t");
    const get = await fetch(`${server.url}/v2/a/b/manifests/t`, {
      headers: { Accept: MEDIA.ociManifest },
    });
    await expectStatus(get, 200);
    await pushImage(server.url, "a/b", "u", { seed: 2 });
    await receiver.until((events) => events.length >= 2);
    assert.deepEqual(receiver.events.map((e) => [e.action, e.target.tag]), [
      ["push", "t"],
      ["push", "u"],
    ]);
  } finally {
    await server.close();
    await receiver.close();
  }
});

Deno.test({
  name: "notifications: distribution 2.8.2 sends the same envelope and event shape",
  ignore: skipWithout("docker-registry"),
  async fn() {
    const receiver = new Receiver();
    const dataDir = await Deno.makeTempDir({ prefix: "berth-dist-events-" });
    const port = freePort();
    const config = `${dataDir}/config.yml`;
    await Deno.writeTextFile(
      config,
      [
        "version: 0.1",
        "log: {level: error}",
        `storage: {filesystem: {rootdirectory: ${dataDir}/data}, delete: {enabled: true}}`,
        `http: {addr: "127.0.0.1:${port}"}`,
        "notifications:",
        "  endpoints:",
        "    - name: hook",
        `      url: ${receiver.url}`,
        "      timeout: 2s",
        "      threshold: 3",
        "      backoff: 100ms",
      ].join("\n"),
    );
    const dist = new Deno.Command("docker-registry", {
      args: ["serve", config],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const server = await startServer({ config: { notifications: notifications(receiver.url) } });
    try {
      const base = `http://127.0.0.1:${port}`;
      for (let i = 0; i < 200; i++) {
        const up = await fetch(`${base}/v2/`).then(
          (r) => r.body?.cancel().then(() => true),
          () => false,
        );
        if (up) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      await pushTwoStep(base, "shape/app", "v1");
      await receiver.until((events) => manifestPushes(events).length === 1);
      const theirs = manifestPushes(receiver.events)[0];
      receiver.events.length = 0;
      await pushTwoStep(server.url, "shape/app", "v1");
      await receiver.until((events) => manifestPushes(events).length === 1);
      const ours = manifestPushes(receiver.events)[0];
      assert.deepEqual(shape(ours), shape(theirs));
      for (const key of ["mediaType", "size", "digest", "length", "repository", "tag"]) {
        assert.deepEqual(ours.target[key], theirs.target[key], key);
      }
      assert.equal(
        ours.target.url.replace(server.host, "HOST"),
        theirs.target.url.replace(`127.0.0.1:${port}`, "HOST"),
      );
    } finally {
      dist.kill("SIGTERM");
      await dist.status;
      await server.close();
      await receiver.close();
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});

Deno.test("notifications: receiver down, 20 pushes, kill -9, restart, receiver up: all 20 arrive", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "berth-events-crash-" });
  const port = freePort();
  const env = {
    REGISTRY_NOTIFICATIONS: JSON.stringify({
      endpoints: [{
        name: "hook",
        url: `http://127.0.0.1:${port}/events`,
        timeout: "1s",
        threshold: 2,
        backoff: "100ms",
      }],
    }),
  };
  let child = await spawnServer({ dataDir, env });
  let receiver: Receiver | undefined;
  try {
    const pushed: string[] = [];
    for (let i = 1; i <= 20; i++) {
      pushed.push((await pushImage(child.url, `crash/r${i % 3}`, `t${i}`, { seed: i })).digest);
    }
    assert.equal((await child.stop("SIGKILL")).signal, "SIGKILL");
    child = await spawnServer({ dataDir, env });
    receiver = new Receiver(port);
    await receiver.until((events) => manifestPushes(events).length >= 20);
    const pushes = manifestPushes(receiver.events);
    assert.deepEqual(pushes.map((e) => e.target.tag), pushed.map((_, i) => `t${i + 1}`));
    assert.deepEqual(pushes.map((e) => e.target.digest), pushed);
    // Every blob push came too (2 per image), each event once.
    assert.equal(receiver.events.length, 60);
    assert.equal(new Set(receiver.events.map((e) => e.id)).size, 60);
  } finally {
    await child.stop("SIGTERM");
    await receiver?.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("notifications: a queue past its bound drops the oldest events, counted in metrics", async () => {
  const config = notifications(`http://127.0.0.1:${freePort()}/events`);
  const server = await startServer({
    config: { notifications: { ...config, maxQueuedEvents: 4 } },
  });
  try {
    await pushImage(server.url, "bound/app", "a", { seed: 1 });
    await pushImage(server.url, "bound/app", "b", { seed: 2 });
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /^berth_notifications_pending\{endpoint="hook"\} 4$/m);
    assert.match(metrics, /^berth_notifications_dropped_total\{endpoint="hook"\} 2$/m);
    assert.match(metrics, /^berth_notifications_failed_attempts_total\{endpoint="hook"\} [1-9]/m);
    const dir = `${server.dataDir}/docker/registry/v2/_berth/events/hook`;
    const files = (await Array.fromAsync(Deno.readDir(dir))).filter((e) => e.isFile);
    assert.equal(files.length, 4);
  } finally {
    await server.close();
  }
});

Deno.test("notifications: includereferences lists a manifest's config and layers", async () => {
  const receiver = new Receiver();
  const config = notifications(receiver.url, { ignoredmediatypes: ["application/octet-stream"] });
  const server = await startServer({
    config: { notifications: { ...config, includeReferences: true } },
  });
  try {
    const image = await pushImage(server.url, "refs/app", "v1");
    await receiver.until((events) => events.length >= 1);
    const manifest = image.manifest as Json;
    assert.deepEqual(receiver.events[0].target.references, [manifest.config, ...manifest.layers]);
  } finally {
    await server.close();
    await receiver.close();
  }
});

Deno.test("notifications: what retention deletes after a push is reported as delete events", async () => {
  const receiver = new Receiver();
  const config = notifications(receiver.url, { ignoredmediatypes: ["application/octet-stream"] });
  const server = await startServer({
    config: {
      notifications: config,
      policies: [{ repositories: "ci/*", immutableTags: [], retention: { keepLast: 1 } }],
    },
  });
  try {
    await pushImage(server.url, "ci/app", "old", { seed: 1 });
    await new Promise((r) => setTimeout(r, 20));
    await pushImage(server.url, "ci/app", "new", { seed: 2 });
    await receiver.until((events) => events.length >= 3);
    assert.deepEqual(receiver.events.map((e) => [e.action, e.target.tag]), [
      ["push", "old"],
      ["push", "new"],
      ["delete", "old"],
    ]);
  } finally {
    await server.close();
    await receiver.close();
  }
});
