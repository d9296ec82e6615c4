/**
 * E2E: `deno task image` builds an OCI layout that umoci reads, podman runs, and skopeo pushes to
 * and pulls from; SIGTERM stops the container cleanly. Prints the image size.
 *
 * @module
 */
import assert from "node:assert/strict";
import { buildImage } from "../../scripts/build_image.ts";
import { run, skipWithout } from "../helpers/tools.ts";

/** A free loopback port (host networking: the container binds it itself). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

async function waitHealthy(url: string): Promise<void> {
  let last = "";
  for (let i = 0; i < 150; i++) {
    try {
      const response = await fetch(`${url}/healthz`);
      last = await response.text();
      if (response.status === 200) return;
    } catch (error) {
      last = String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`the container never became healthy: ${last}`);
}

Deno.test({
  name: "image: the OCI image runs under podman and serves a skopeo push and pull",
  ignore: skipWithout("podman", "runc", "umoci", "skopeo", "tar"),
  fn: async () => {
    const work = await Deno.makeTempDir({ prefix: "berth-image-test-" });
    const podman = [
      "--root",
      `${work}/storage`,
      "--runroot",
      `${work}/run`,
      "--storage-driver",
      "vfs",
    ];
    const name = `berth-test-${crypto.randomUUID().slice(0, 8)}`;
    let started = false;
    try {
      // Build, and check the layout with another tool than the one that wrote it.
      const layout = `${work}/layout`;
      const image = await buildImage({ output: layout, tag: "test" });
      const stat = await run("umoci", ["stat", "--image", `${layout}:test`]);
      assert.match(stat, /deno task image/);
      const index = JSON.parse(await Deno.readTextFile(`${layout}/index.json`));
      const manifest = JSON.parse(
        await Deno.readTextFile(`${layout}/blobs/sha256/${image.digest.slice(7)}`),
      );
      const config = JSON.parse(
        await Deno.readTextFile(`${layout}/blobs/sha256/${manifest.config.digest.slice(7)}`),
      );
      assert.equal(index.manifests.length, 2);
      assert.deepEqual(config.config.Cmd, ["serve", "/etc/docker/registry/config.yml"]);
      assert.ok(!config.config.Entrypoint.includes("-A"), "explicit permissions, never -A");
      assert.ok(!config.config.Entrypoint.includes("--allow-all"));
      assert.deepEqual(config.config.ExposedPorts, { "5000/tcp": {} });
      assert.deepEqual(config.config.Volumes, { "/var/lib/registry": {} });
      assert.equal(config.config.Labels["org.opencontainers.image.title"], "berth");
      // Only what berth needs: the runtime, the bundle, its libraries, config, empty folders.
      const layer = `${layout}/blobs/sha256/${manifest.layers[0].digest.slice(7)}`;
      const entries = (await run("tar", ["-tzf", layer])).split("\n").filter(Boolean);
      const allowed =
        /^\.\/((app|usr|usr\/bin|etc|etc\/docker|etc\/docker\/registry|var|var\/lib|var\/lib\/registry|tmp|root|lib|lib64|lib\/x86_64-linux-gnu)\/|app\/berth\.js|usr\/bin\/deno|etc\/(passwd|group)|etc\/docker\/registry\/config\.yml|lib(64)?\/[^/]+\.so[.\d]*|lib\/x86_64-linux-gnu\/[^/]+\.so[.\d]*)?$/;
      for (const entry of entries) assert.match(entry, allowed);
      assert.ok(image.compressedBytes < 80 * 1024 * 1024, `image is ${image.compressedBytes} B`);

      // Run it.
      const pulled = await run("podman", [...podman, "pull", "-q", `oci:${layout}:test`]);
      const id = pulled.trim().split("\n").at(-1)!;
      const port = freePort();
      await run("podman", [
        ...podman,
        "run",
        "-d",
        "--pull=never",
        "--name",
        name,
        "--runtime",
        "runc",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        "--network",
        "host",
        "-e",
        `REGISTRY_HTTP_ADDR=127.0.0.1:${port}`,
        id,
      ]);
      started = true;
      const url = `http://127.0.0.1:${port}`;
      await waitHealthy(url);

      // The health command works inside the image (no shell, no curl there).
      const health = await run("podman", [
        ...podman,
        "exec",
        name,
        "/usr/bin/deno",
        "run",
        "--allow-net",
        "--allow-env",
        "/app/berth.js",
        "health",
      ]);
      assert.equal(JSON.parse(health).status, "ok");

      // Push a small image made with umoci, pull it back, compare.
      const src = `${work}/src`;
      await Deno.writeTextFile(`${work}/hello.txt`, "hello from berth's image test\n");
      await run("umoci", ["init", "--layout", src]);
      await run("umoci", ["new", "--image", `${src}:tiny`]);
      await run("umoci", ["insert", "--image", `${src}:tiny`, `${work}/hello.txt`, "/hello.txt"]);
      const target = `docker://127.0.0.1:${port}/e2e/tiny:1`;
      await run("skopeo", ["copy", "-q", "--dest-tls-verify=false", `oci:${src}:tiny`, target]);
      await run("skopeo", ["copy", "-q", "--src-tls-verify=false", target, `oci:${work}/out:tiny`]);
      const pushed = await run("skopeo", ["inspect", "--raw", `oci:${src}:tiny`]);
      const served = await run("skopeo", ["inspect", "--raw", "--tls-verify=false", target]);
      const back = await run("skopeo", ["inspect", "--raw", `oci:${work}/out:tiny`]);
      assert.equal(served, pushed);
      assert.equal(back, pushed);

      const size = await run("podman", [
        ...podman,
        "image",
        "inspect",
        "--format",
        "{{.Size}}",
        id,
      ]);
      console.log(
        `image: ${(image.compressedBytes / 1048576).toFixed(1)} MiB compressed, ` +
          `${(Number(size) / 1048576).toFixed(1)} MiB in podman's storage`,
      );

      // SIGTERM (podman stop) ends it cleanly.
      await run("podman", [...podman, "stop", "-t", "20", name]);
      const code = await run("podman", [
        ...podman,
        "inspect",
        "--format",
        "{{.State.ExitCode}}",
        name,
      ]);
      assert.equal(code.trim(), "0");
      const logs = await run("podman", [...podman, "logs", name]);
      assert.match(logs, /"msg":"stopped","drained":true/);
    } finally {
      if (started) await run("podman", [...podman, "rm", "-f", name]).catch(() => "");
      await run("podman", [...podman, "rmi", "-a", "-f"]).catch(() => "");
      await Deno.remove(work, { recursive: true });
    }
  },
});
