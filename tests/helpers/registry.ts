/**
 * Small HTTP helpers for integration tests: digests of test content, pushing blobs and manifests,
 * and checking the spec's error bodies.
 *
 * @module
 */
import { S3Client } from "../../src/storage/drivers/s3_client.ts";
import { s3Options } from "./s3.ts";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";

/** The API version header every response carries. */
export const API_VERSION = ["Docker-Distribution-API-Version", "registry/2.0"] as const;

/** OCI and Docker media types used by the tests. */
export const MEDIA = {
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayer: "application/vnd.oci.image.layer.v1.tar+gzip",
  ociEmpty: "application/vnd.oci.empty.v1+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayer: "application/vnd.docker.image.rootfs.diff.tar.gzip",
} as const;

/** UTF-8 bytes of a string. */
export function text(value: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(value);
}

/** `algorithm:hex` of some bytes. */
export function digestOf(bytes: Uint8Array, algorithm: "sha256" | "sha512" = "sha256"): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}`;
}

/** Deterministic pseudo-random bytes (xorshift), different for each seed. */
export function randomBytes(size: number, seed = 1): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

/** A descriptor of some bytes. */
export interface Descriptor {
  /** Media type. */
  mediaType: string;
  /** Digest. */
  digest: string;
  /** Size. */
  size: number;
  /** Other fields. */
  [key: string]: unknown;
}

/** The descriptor of `bytes` with a media type. */
export function descriptor(
  mediaType: string,
  bytes: Uint8Array,
  extra: Record<string, unknown> = {},
): Descriptor {
  return { mediaType, digest: digestOf(bytes), size: bytes.byteLength, ...extra };
}

/** Read a response's body (so no resource leaks) and return it as bytes. */
export async function bytesOf(response: Response): Promise<Uint8Array> {
  return new Uint8Array(await response.arrayBuffer());
}

/**
 * Check a response is the spec's error: status, API version header, JSON body with one error of
 * `code` (message a string, detail present). Consumes the body. Returns the error entry.
 */
export async function assertError(
  response: Response,
  status: number,
  code: string,
): Promise<{ code: string; message: string; detail: unknown }> {
  const raw = await response.text();
  assert.equal(response.status, status, `status (body: ${raw})`);
  assert.equal(response.headers.get(API_VERSION[0]), API_VERSION[1]);
  assert.match(response.headers.get("Content-Type") ?? "", /^application\/json/);
  const body = JSON.parse(raw) as { errors: { code: string; message: string; detail: unknown }[] };
  assert.ok(Array.isArray(body.errors) && body.errors.length === 1, raw);
  const [error] = body.errors;
  assert.ok(error);
  assert.equal(error.code, code, raw);
  assert.equal(typeof error.message, "string");
  assert.ok(error.message.length > 0);
  assert.ok("detail" in error, "error has a detail field");
  assert.deepEqual(Object.keys(error).sort(), ["code", "detail", "message"]);
  return error;
}

/** Check a status and drain the body; returns the response for header checks. */
export async function expectStatus(response: Response, status: number): Promise<Response> {
  const body = response.bodyUsed ? "" : await response.text();
  assert.equal(response.status, status, `status (body: ${body.slice(0, 500)})`);
  assert.equal(response.headers.get(API_VERSION[0]), API_VERSION[1]);
  return response;
}

/** Push a blob in one `POST ?digest=`; returns its digest. */
export async function pushBlob(
  base: string,
  name: string,
  bytes: Uint8Array<ArrayBuffer>,
  algorithm: "sha256" | "sha512" = "sha256",
): Promise<string> {
  const digest = digestOf(bytes, algorithm);
  const response = await fetch(`${base}/v2/${name}/blobs/uploads/?digest=${digest}`, {
    method: "POST",
    headers: { "Content-Type": "application/octet-stream" },
    body: bytes,
  });
  await expectStatus(response, 201);
  return digest;
}

/** PUT a manifest (object or raw bytes) under a reference; the caller reads the response. */
export async function putManifest(
  base: string,
  name: string,
  reference: string,
  manifest: unknown,
  contentType: string,
): Promise<Response> {
  const body = manifest instanceof Uint8Array
    ? new Uint8Array(manifest)
    : text(JSON.stringify(manifest));
  const response = await fetch(`${base}/v2/${name}/manifests/${reference}`, {
    method: "PUT",
    headers: { "Content-Type": contentType },
    body,
  });
  return response;
}

/** A pushed image: its config, one layer and its OCI manifest (not yet pushed). */
export interface TestImage {
  /** Config bytes. */
  config: Uint8Array<ArrayBuffer>;
  /** Layer bytes. */
  layer: Uint8Array<ArrayBuffer>;
  /** The manifest document. */
  manifest: Record<string, unknown>;
  /** The manifest's exact bytes. */
  bytes: Uint8Array<ArrayBuffer>;
  /** The manifest's digest. */
  digest: string;
}

/**
 * Push a config and a layer into `name` and build an image manifest over them (OCI by default,
 * Docker schema 2 with `docker`). The manifest itself is not pushed.
 */
export async function pushImageBlobs(
  base: string,
  name: string,
  options: { seed?: number; docker?: boolean; layerSize?: number } = {},
): Promise<TestImage> {
  const seed = options.seed ?? 1;
  const config = text(JSON.stringify({ architecture: "amd64", os: "linux", seed }));
  const layer = randomBytes(options.layerSize ?? 1000, seed);
  await pushBlob(base, name, config);
  await pushBlob(base, name, layer);
  const manifest = {
    schemaVersion: 2,
    mediaType: options.docker ? MEDIA.dockerManifest : MEDIA.ociManifest,
    config: descriptor(options.docker ? MEDIA.dockerConfig : MEDIA.ociConfig, config),
    layers: [descriptor(options.docker ? MEDIA.dockerLayer : MEDIA.ociLayer, layer)],
  };
  const bytes = text(JSON.stringify(manifest));
  return { config, layer, manifest, bytes, digest: digestOf(bytes) };
}

/** Push an image's blobs and its manifest under `tag` (201 expected); returns the image. */
export async function pushImage(
  base: string,
  name: string,
  tag: string,
  options: { seed?: number; docker?: boolean; layerSize?: number } = {},
): Promise<TestImage> {
  const image = await pushImageBlobs(base, name, options);
  const mediaType = String(image.manifest.mediaType);
  await expectStatus(await putManifest(base, name, tag, image.bytes, mediaType), 201);
  return image;
}

/**
 * Push an OCI index tagged `tag` over `children` (pushed already) and a signature artifact whose
 * subject is the first child (by digest, empty config and layer); returns both documents.
 */
export async function pushIndexAndSignature(
  base: string,
  name: string,
  tag: string,
  children: TestImage[],
): Promise<{ index: Uint8Array<ArrayBuffer>; signature: Uint8Array<ArrayBuffer> }> {
  const index = text(JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA.ociIndex,
    manifests: children.map((c) => descriptor(MEDIA.ociManifest, c.bytes)),
  }));
  await expectStatus(await putManifest(base, name, tag, index, MEDIA.ociIndex), 201);
  const empty = text("{}");
  await pushBlob(base, name, empty);
  const signature = text(JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA.ociManifest,
    artifactType: "application/vnd.example.sig",
    config: descriptor(MEDIA.ociEmpty, empty),
    layers: [descriptor(MEDIA.ociEmpty, empty)],
    subject: descriptor(MEDIA.ociManifest, children[0]!.bytes),
  }));
  const digest = digestOf(signature);
  await expectStatus(await putManifest(base, name, digest, signature, MEDIA.ociManifest), 201);
  return { index, signature };
}

/** Every file under a directory, as paths relative to it. */
export async function listFiles(dir: string): Promise<string[]> {
  const onS3 = await s3Files(dir);
  if (onS3) return onS3;
  const files: string[] = [];
  const walk = async (path: string, prefix: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(path));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return;
      throw error;
    }
    for (const entry of entries) {
      const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
      if (entry.isDirectory) await walk(`${path}/${entry.name}`, rel);
      else files.push(rel);
    }
  };
  await walk(dir, "");
  return files.sort();
}

/**
 * Under `BERTH_TEST_STORAGE=s3` a test server's data lives in a bucket named in its data
 * directory (see `server.ts`): the files under `dir` are then the bucket's keys below it.
 */
async function s3Files(dir: string): Promise<string[] | undefined> {
  const at = dir.indexOf("/docker/registry/v2");
  if (at < 0) return undefined;
  let bucket: string;
  try {
    bucket = (await Deno.readTextFile(`${dir.slice(0, at)}/${S3_BUCKET_FILE}`)).trim();
  } catch {
    return undefined;
  }
  const prefix = `${dir.slice(at + 1).replace(/\/+$/, "")}/`;
  const files: string[] = [];
  for await (const entry of new S3Client(s3Options(bucket)).list(prefix)) {
    if (entry.kind === "object") files.push(entry.key.slice(prefix.length));
  }
  return files.sort();
}

/** The blob data files of a data directory (relative to `blobs/`). */
export async function blobFiles(dataDir: string): Promise<string[]> {
  return await listFiles(`${dataDir}/docker/registry/v2/blobs`);
}

/** The file in a test server's data directory naming its bucket (`BERTH_TEST_STORAGE=s3`). */
export const S3_BUCKET_FILE = ".berth-test-s3-bucket";

/** A response read off a raw socket. */
export interface RawResponse {
  /** HTTP status. */
  status: number;
  /** The whole response text (status line, headers, body). */
  raw: string;
}

/**
 * Send a request byte for byte over TCP (no URL normalisation by a client), half-close, and read
 * the whole response. `body` is sent as given, whatever `headers` declare.
 */
export async function rawRequest(
  base: string,
  method: string,
  path: string,
  options: {
    headers?: Record<string, string>;
    body?: string;
    timeoutMs?: number;
    /** Half-close after sending (a body shorter than its Content-Length then ends). */
    closeWrite?: boolean;
  } = {},
): Promise<RawResponse> {
  const url = new URL(base);
  const conn = await Deno.connect({ hostname: url.hostname, port: Number(url.port) });
  // A server that never answers (or never closes) fails the test instead of hanging it.
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    conn.close();
  }, options.timeoutMs ?? 10_000);
  try {
    const headers = { Host: url.host, Connection: "close", ...options.headers };
    if (options.body !== undefined && !("Content-Length" in headers)) {
      Object.assign(headers, { "Content-Length": String(text(options.body).byteLength) });
    }
    const head = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("");
    await conn.write(text(`${method} ${path} HTTP/1.1\r\n${head}\r\n${options.body ?? ""}`));
    // Only on request: Deno 2.8's server drops its answer to a client that half-closes early.
    if (options.closeWrite) await conn.closeWrite();
    const chunks: Uint8Array[] = [];
    const buffer = new Uint8Array(16384);
    while (true) {
      const n = await conn.read(buffer);
      if (n === null) break;
      chunks.push(buffer.slice(0, n));
    }
    const all = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
    let at = 0;
    for (const chunk of chunks) {
      all.set(chunk, at);
      at += chunk.byteLength;
    }
    const raw = new TextDecoder().decode(all);
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0);
    return { status, raw };
  } catch (error) {
    if (timedOut) throw new Error(`${method} ${path}: no complete answer in time`);
    throw error;
  } finally {
    clearTimeout(timer);
    if (!timedOut) conn.close();
  }
}
