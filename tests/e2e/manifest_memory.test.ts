/**
 * The manifest cache keeps to its byte budget: 150 manifests of 3.5 MiB pushed to and read back
 * from a berth child process leave its resident set under 600 MB. Each manifest lists its one
 * layer many times over, so its parsed form (a digest per descriptor) weighs as much as its bytes.
 *
 * @module
 */
import assert from "node:assert/strict";
import { procStatusKiB } from "../helpers/rss.ts";
import { spawnServer } from "../helpers/server.ts";
import {
  bytesOf,
  descriptor,
  digestOf,
  expectStatus,
  MEDIA,
  pushBlob,
  putManifest,
  randomBytes,
  text,
} from "../helpers/registry.ts";

const COUNT = 150;
const SIZE = 3.5 * 1024 * 1024;

Deno.test({
  name: "memory: 150 manifests of 3.5 MiB pushed and read keep the server under 600 MB RSS",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const dataDir = await Deno.makeTempDir({ prefix: "berth-manifest-rss-" });
    const server = await spawnServer({ dataDir });
    try {
      const name = "rss/manifests";
      const config = text(JSON.stringify({ architecture: "amd64", os: "linux" }));
      const layer = randomBytes(1000);
      await pushBlob(server.url, name, config);
      await pushBlob(server.url, name, layer);
      const layerJson = JSON.stringify(descriptor(MEDIA.ociLayer, layer));
      const head = `{"schemaVersion":2,"mediaType":"${MEDIA.ociManifest}","config":${
        JSON.stringify(descriptor(MEDIA.ociConfig, config))
      },"annotations":{"n":"`;
      const layers = Math.floor((SIZE - head.length - 40) / (layerJson.length + 1));
      const tail = `"},"layers":[${Array(layers).fill(layerJson).join(",")}]}`;
      const digests: string[] = [];
      for (let i = 0; i < COUNT; i++) {
        const bytes = text(`${head}${String(i).padStart(6, "0")}${tail}`);
        assert.ok(bytes.byteLength <= SIZE && bytes.byteLength > SIZE - 1024);
        digests.push(digestOf(bytes));
        const put = await putManifest(server.url, name, `v${i}`, bytes, MEDIA.ociManifest);
        await expectStatus(put, 201);
      }
      for (const [i, digest] of digests.entries()) {
        const response = await fetch(`${server.url}/v2/${name}/manifests/v${i}`, {
          headers: { Accept: MEDIA.ociManifest },
        });
        assert.equal(response.status, 200);
        assert.equal(digestOf(await bytesOf(response)), digest);
      }
      const pid = server.process.pid;
      const rssMB = await procStatusKiB(pid, "VmRSS") * 1024 / 1e6;
      const peakMB = await procStatusKiB(pid, "VmHWM") * 1024 / 1e6;
      assert.ok(rssMB < 600, `server RSS ${rssMB.toFixed(0)} MB after ${COUNT} manifests`);
      assert.ok(peakMB < 600, `server peak RSS ${peakMB.toFixed(0)} MB`);
    } finally {
      await server.stop();
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});
