/**
 * `deno task image`: build berth's container image as an OCI image layout, without Docker.
 *
 * One layer holds only what berth needs: the Deno runtime binary, the bundle (`deno bundle`), the
 * shared libraries the runtime loads (read from `ldd`), a default distribution-style config, and
 * empty `/tmp` and `/var/lib/registry`. No distribution base image, no shell.
 *
 * ```
 * deno task image [--output DIR] [--deno PATH] [--tag TAG]
 * ```
 * Default output `dist/image` (tags `<version>` and `latest`). Load it with
 * `skopeo copy oci:dist/image:latest docker://HOST/berth:latest` or `podman pull oci:dist/image:latest`.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { DENO_VERSION, VERSION } from "../src/version.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const RUN_FLAGS = ["--allow-net", "--allow-read", "--allow-write", "--allow-env"];

/** The default config baked into the image (override with a mounted file or REGISTRY_*). */
const IMAGE_CONFIG = `${ROOT}deploy/config.yml`;

/** Options of {@link buildImage}. */
export interface ImageOptions {
  /** The OCI layout folder to write (replaced). */
  output: string;
  /**
   * The Deno binary to ship (default: the one running this script, links resolved); it must be
   * release `DENO_VERSION` (src/version.ts).
   */
  deno?: string;
  /** Extra tag besides `latest` (default: berth's version). */
  tag?: string;
}

/** What was built. */
export interface ImageResult {
  /** Manifest digest. */
  digest: string;
  /** Compressed size: config + layer + manifest bytes. */
  compressedBytes: number;
  /** Size of the uncompressed layer. */
  layerBytes: number;
  /** Tags written. */
  tags: string[];
}

async function command(cmd: string, args: string[], cwd?: string): Promise<string> {
  const out = await new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
    ...(cwd && { cwd }),
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}${text}`);
  }
  return text;
}

/** The shared libraries a binary loads, as absolute paths (what `ldd` lists, vdso aside). */
export async function sharedLibraries(binary: string): Promise<string[]> {
  const out = await command("ldd", [binary]);
  const libs = new Set<string>();
  for (const line of out.split("\n")) {
    const match = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (match) libs.add(match[1]!);
  }
  return [...libs].sort();
}

/** Copy `from` to `rootfs` + `to` (links followed), creating folders. */
async function place(rootfs: string, from: string, to: string, mode = 0o755): Promise<void> {
  const target = `${rootfs}${to}`;
  await Deno.mkdir(target.slice(0, target.lastIndexOf("/")), { recursive: true });
  await Deno.copyFile(await Deno.realPath(from), target);
  await Deno.chmod(target, mode);
}

/** sha256 and size of a file, streamed. */
async function digestFile(path: string): Promise<{ digest: string; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  using file = await Deno.open(path);
  for await (const chunk of file.readable) {
    hash.update(chunk);
    size += chunk.byteLength;
  }
  return { digest: `sha256:${hash.digest("hex")}`, size };
}

/** Write bytes as a content-addressed blob of the layout; returns the descriptor. */
async function writeBlob(layout: string, mediaType: string, bytes: Uint8Array) {
  const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  await Deno.writeFile(`${layout}/blobs/sha256/${digest.slice(7)}`, bytes);
  return { mediaType, digest, size: bytes.byteLength };
}

/** Build the image layout; returns its digest and sizes. */
export async function buildImage(options: ImageOptions): Promise<ImageResult> {
  const deno = await Deno.realPath(options.deno ?? Deno.execPath());
  const release = /^deno (\S+)/.exec(await command(deno, ["--version"]))?.[1];
  if (release !== DENO_VERSION) {
    throw new Error(
      `${deno} is Deno ${release}; the image ships Deno ${DENO_VERSION} (docs/chunked_uploads.md): ` +
        `run \`npx -y deno@${DENO_VERSION} task image\` or pass --deno with a ${DENO_VERSION} binary`,
    );
  }
  const tags = ["latest", options.tag ?? VERSION];
  const work = await Deno.makeTempDir({ prefix: "berth-image-" });
  try {
    // 1. The root filesystem.
    const rootfs = `${work}/rootfs`;
    await command(Deno.execPath(), [
      "bundle",
      "--quiet",
      "--minify",
      "--output",
      `${rootfs}/app/berth.js`,
      "main.ts",
    ], ROOT);
    await Deno.chmod(`${rootfs}/app/berth.js`, 0o644);
    await place(rootfs, deno, "/usr/bin/deno");
    for (const lib of await sharedLibraries(deno)) await place(rootfs, lib, lib);
    await Deno.mkdir(`${rootfs}/etc/docker/registry`, { recursive: true });
    await Deno.copyFile(IMAGE_CONFIG, `${rootfs}/etc/docker/registry/config.yml`);
    await Deno.writeTextFile(`${rootfs}/etc/passwd`, "root:x:0:0:root:/root:/sbin/nologin\n");
    await Deno.writeTextFile(`${rootfs}/etc/group`, "root:x:0:\n");
    for (const dir of ["/var/lib/registry", "/root", "/tmp"]) {
      await Deno.mkdir(`${rootfs}${dir}`, { recursive: true });
    }
    await Deno.chmod(`${rootfs}/tmp`, 0o1777);

    // 2. One layer: a reproducible tar (sorted, fixed times and owners), gzipped.
    const tar = `${work}/layer.tar`;
    await command("tar", [
      "--sort=name",
      "--mtime=@0",
      "--owner=0",
      "--group=0",
      "--numeric-owner",
      "--format=posix",
      "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
      "-C",
      rootfs,
      "-cf",
      tar,
      ".",
    ]);
    const diffId = await digestFile(tar);
    const layout = options.output;
    await Deno.remove(layout, { recursive: true }).catch(() => {});
    await Deno.mkdir(`${layout}/blobs/sha256`, { recursive: true });
    const gz = `${work}/layer.tar.gz`;
    {
      using input = await Deno.open(tar);
      using output = await Deno.open(gz, { write: true, create: true, truncate: true });
      await input.readable.pipeThrough(new CompressionStream("gzip")).pipeTo(output.writable);
    }
    const layerBlob = await digestFile(gz);
    await Deno.rename(gz, `${layout}/blobs/sha256/${layerBlob.digest.slice(7)}`);
    const layer = {
      mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
      digest: layerBlob.digest,
      size: layerBlob.size,
    };

    // 3. Config, manifest, index.
    const created = new Date().toISOString();
    const labels = {
      "org.opencontainers.image.title": "berth",
      "org.opencontainers.image.description": "An OCI distribution registry in TypeScript for Deno",
      "org.opencontainers.image.version": VERSION,
      "org.opencontainers.image.created": created,
    };
    const config = {
      created,
      architecture: "amd64",
      os: "linux",
      config: {
        Entrypoint: ["/usr/bin/deno", "run", ...RUN_FLAGS, "/app/berth.js"],
        Cmd: ["serve", "/etc/docker/registry/config.yml"],
        Env: [
          "PATH=/usr/bin",
          "DENO_DIR=/tmp/deno",
          "DENO_NO_UPDATE_CHECK=1",
          "NO_COLOR=1",
          "HOME=/root",
        ],
        ExposedPorts: { "5000/tcp": {} },
        Volumes: { "/var/lib/registry": {} },
        WorkingDir: "/",
        StopSignal: "SIGTERM",
        Labels: labels,
      },
      rootfs: { type: "layers", diff_ids: [diffId.digest] },
      history: [{ created, created_by: "deno task image (scripts/build_image.ts)" }],
    };
    const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
    const configBlob = await writeBlob(
      layout,
      "application/vnd.oci.image.config.v1+json",
      encode(config),
    );
    const manifest = {
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: configBlob,
      layers: [layer],
      annotations: labels,
    };
    const manifestBlob = await writeBlob(layout, manifest.mediaType, encode(manifest));
    const index = {
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: tags.map((tag) => ({
        ...manifestBlob,
        platform: { architecture: "amd64", os: "linux" },
        annotations: { "org.opencontainers.image.ref.name": tag },
      })),
    };
    await Deno.writeTextFile(`${layout}/index.json`, JSON.stringify(index));
    await Deno.writeTextFile(
      `${layout}/oci-layout`,
      JSON.stringify({ imageLayoutVersion: "1.0.0" }),
    );
    return {
      digest: manifestBlob.digest,
      compressedBytes: configBlob.size + layer.size + manifestBlob.size,
      layerBytes: diffId.size,
      tags,
    };
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}

if (import.meta.main) {
  const args = [...Deno.args];
  const option = (name: string) => {
    const at = args.indexOf(name);
    return at >= 0 ? args[at + 1] : undefined;
  };
  const output = option("--output") ?? `${ROOT}dist/image`;
  const deno = option("--deno");
  const tag = option("--tag");
  const result = await buildImage({
    output,
    ...(deno !== undefined && { deno }),
    ...(tag !== undefined && { tag }),
  });
  const mib = (n: number) => (n / 1024 / 1024).toFixed(1);
  console.log(
    `${output}: ${result.digest} (tags ${result.tags.join(", ")}): ` +
      `${mib(result.compressedBytes)} MiB compressed, ${mib(result.layerBytes)} MiB unpacked`,
  );
}
