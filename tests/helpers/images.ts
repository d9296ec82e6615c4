/**
 * Test images and the reference registry for e2e tests: OCI layouts built with `umoci` (and a
 * multi-architecture index written by hand), and Debian's `docker-registry` (distribution 2.8.2)
 * started on a free loopback port over a given data directory.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { randomBytes } from "./registry.ts";
import { run } from "./tools.ts";

/** An OCI layout on disk. */
export interface Layout {
  /** Its folder. */
  dir: string;
  /** Tag → manifest digest, as in its `index.json`. */
  refs: Record<string, string>;
}

/** Read the `org.opencontainers.image.ref.name` → digest map of a layout's `index.json`. */
export async function layoutRefs(dir: string): Promise<Record<string, string>> {
  const index = JSON.parse(await Deno.readTextFile(`${dir}/index.json`)) as {
    manifests: { digest: string; annotations?: Record<string, string> }[];
  };
  const refs: Record<string, string> = {};
  for (const m of index.manifests) {
    const ref = m.annotations?.["org.opencontainers.image.ref.name"];
    if (ref) refs[ref] = m.digest;
  }
  return refs;
}

/** Read a blob of a layout. */
export async function layoutBlob(dir: string, digest: string): Promise<Uint8Array> {
  const [alg, hex] = digest.split(":");
  return await Deno.readFile(`${dir}/blobs/${alg}/${hex}`);
}

/**
 * Build an OCI layout in `dir` with umoci: tag `amd64` (a small generated rootfs plus
 * `extraBytes` of pseudo-random data), tag `arm64` (the same image configured for arm64), and tag
 * `multi`, an OCI index over both written by hand (umoci cannot make one).
 */
export async function buildLayout(dir: string, options: { seed?: number } = {}): Promise<Layout> {
  const seed = options.seed ?? 1;
  const rootfs = `${dir}.rootfs`;
  await Deno.mkdir(`${rootfs}/etc`, { recursive: true });
  await Deno.mkdir(`${rootfs}/usr/share/berth`, { recursive: true });
  await Deno.writeTextFile(`${rootfs}/etc/os-release`, `NAME=berth-test\nSEED=${seed}\n`);
  await Deno.writeFile(`${rootfs}/usr/share/berth/data.bin`, randomBytes(300_000, seed));
  try {
    await run("umoci", ["init", "--layout", dir]);
    await run("umoci", ["new", "--image", `${dir}:amd64`]);
    await run("umoci", ["insert", "--image", `${dir}:amd64`, `${rootfs}/etc`, "/etc"]);
    await run("umoci", ["insert", "--image", `${dir}:amd64`, `${rootfs}/usr`, "/usr"]);
    await run("umoci", [
      "config",
      "--image",
      `${dir}:amd64`,
      "--architecture",
      "arm64",
      "--tag",
      "arm64",
    ]);
  } finally {
    await Deno.remove(rootfs, { recursive: true });
  }
  const refs = await layoutRefs(dir);
  const children = [];
  for (const arch of ["amd64", "arm64"]) {
    const digest = refs[arch]!;
    const size = (await layoutBlob(dir, digest)).byteLength;
    children.push({
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      digest,
      size,
      platform: { architecture: arch, os: "linux" },
    });
  }
  const indexBytes = new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: children,
  }));
  const hex = createHash("sha256").update(indexBytes).digest("hex");
  await Deno.writeFile(`${dir}/blobs/sha256/${hex}`, indexBytes);
  const index = JSON.parse(await Deno.readTextFile(`${dir}/index.json`));
  index.manifests.push({
    mediaType: "application/vnd.oci.image.index.v1+json",
    digest: `sha256:${hex}`,
    size: indexBytes.byteLength,
    annotations: { "org.opencontainers.image.ref.name": "multi" },
  });
  await Deno.writeTextFile(`${dir}/index.json`, JSON.stringify(index));
  return { dir, refs: await layoutRefs(dir) };
}

/** A free TCP port on 127.0.0.1 (bound, read, released). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** A running `docker-registry` (distribution 2.8.2). */
export interface Distribution {
  /** `127.0.0.1:<port>`. */
  host: string;
  /** Stop it and remove its config. */
  stop(): Promise<void>;
  /** What it has logged so far (its access log too), when started with `log: true`. */
  log(): string;
}

/** Options of {@link startDistribution}. */
export interface DistributionOptions {
  /** More top-level config lines (an `auth:` section, say). */
  config?: string[];
  /** Log at level info and keep the output for {@link Distribution.log}. */
  log?: boolean;
  /** Serve HTTPS with this certificate and key (PEM files). */
  tls?: { cert: string; key: string };
}

/**
 * Start Debian's `docker-registry` serving `dataDir` on a free loopback port; it answers `/v2/`
 * (200, or 401 behind auth; over TLS, plain HTTP with a 400) when this returns.
 */
export async function startDistribution(
  dataDir: string,
  options: DistributionOptions = {},
): Promise<Distribution> {
  const port = freePort();
  const configDir = await Deno.makeTempDir({ prefix: "berth-distribution-" });
  const config = `${configDir}/config.yml`;
  await Deno.writeTextFile(
    config,
    [
      "version: 0.1",
      "log:",
      `  level: ${options.log ? "info" : "error"}`,
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${dataDir}`,
      "  delete:",
      "    enabled: true",
      "  maintenance:",
      "    uploadpurging:",
      "      enabled: false",
      "http:",
      `  addr: 127.0.0.1:${port}`,
      ...(options.tls
        ? ["  tls:", `    certificate: ${options.tls.cert}`, `    key: ${options.tls.key}`]
        : []),
      ...options.config ?? [],
      "",
    ].join("\n"),
  );
  const process = new Deno.Command("docker-registry", {
    args: ["serve", config],
    stdout: options.log ? "piped" : "null",
    stderr: options.log ? "piped" : "null",
  }).spawn();
  let output = "";
  const collect = async (stream: ReadableStream<Uint8Array<ArrayBuffer>>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) output += chunk;
  };
  const logged = options.log
    ? Promise.all([collect(process.stdout), collect(process.stderr)])
    : Promise.resolve();
  const host = `127.0.0.1:${port}`;
  const log = () => output;
  const stop = async () => {
    try {
      process.kill("SIGTERM");
    } catch { /* gone */ }
    await process.status;
    await logged;
    await Deno.remove(configDir, { recursive: true });
  };
  // Over TLS it answers plain HTTP with a 400 once it listens.
  const ready = options.tls ? [400] : [200, 401];
  for (let attempt = 0; attempt < 200; attempt++) {
    try {
      const response = await fetch(`http://${host}/v2/`);
      await response.body?.cancel();
      if (ready.includes(response.status)) return { host, stop, log };
    } catch { /* not up yet */ }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await stop();
  throw new Error("docker-registry did not start");
}
