/**
 * The S3 store the tests use: a Ceph radosgw that `scripts/ceph_up.sh` starts, found through
 * `BERTH_TEST_S3_ENDPOINT`, `BERTH_TEST_S3_ACCESS_KEY`, `BERTH_TEST_S3_SECRET_KEY` (and
 * `BERTH_TEST_S3_REGION`). Without them the S3 tests skip on a developer's machine and fail in CI.
 *
 * @module
 */
import type { S3Config } from "../../src/config.ts";
import type { S3DriverOptions } from "../../src/storage/drivers/s3.ts";
import { S3Client } from "../../src/storage/drivers/s3_client.ts";

/** Where the test S3 store is. */
export interface S3TestEnv {
  /** Endpoint URL. */
  endpoint: string;
  /** Access key. */
  accessKey: string;
  /** Secret key. */
  secretKey: string;
  /** Region. */
  region: string;
}

/** The test S3 store from the environment, or `undefined`. */
export function s3TestEnv(): S3TestEnv | undefined {
  const endpoint = Deno.env.get("BERTH_TEST_S3_ENDPOINT");
  const accessKey = Deno.env.get("BERTH_TEST_S3_ACCESS_KEY");
  const secretKey = Deno.env.get("BERTH_TEST_S3_SECRET_KEY");
  if (!endpoint || !accessKey || !secretKey) return undefined;
  return {
    endpoint,
    accessKey,
    secretKey,
    region: Deno.env.get("BERTH_TEST_S3_REGION") ?? "us-east-1",
  };
}

/**
 * The `ignore` value of a test that needs the S3 store: `true` (skip, with a message) when it is
 * not configured; under `CI=true` that throws instead.
 */
export function skipWithoutS3(): boolean {
  if (s3TestEnv()) return false;
  const message = "S3: BERTH_TEST_S3_ENDPOINT/_ACCESS_KEY/_SECRET_KEY not set";
  if (Deno.env.get("CI") === "true") throw new Error(`${message}, and CI must not skip S3 tests`);
  console.warn(`${message}: skipping (start one: eval "$(scripts/ceph_up.sh)" with set -a)`);
  return true;
}

/** Driver options for a fresh bucket of the test store (small parts so tests cross them). */
export function s3Options(
  bucket: string,
  overrides: Partial<S3DriverOptions> = {},
): S3DriverOptions {
  const env = s3TestEnv();
  if (!env) throw new Error("no S3 test store");
  return {
    endpoint: env.endpoint,
    region: env.region,
    accessKey: env.accessKey,
    secretKey: env.secretKey,
    bucket,
    pathStyle: true,
    rootDirectory: "",
    chunkSize: 5 * 1024 * 1024,
    multipartCopyThresholdSize: 32 * 1024 * 1024,
    multipartCopyChunkSize: 32 * 1024 * 1024,
    ...overrides,
  };
}

/** A bucket of the test store (new and empty unless `name` exists), and how to remove it. */
export async function tempBucket(
  name = `berth-test-${crypto.randomUUID().slice(0, 13)}`,
): Promise<{ name: string; remove(): Promise<void> }> {
  const client = new S3Client(s3Options(name));
  await client.createBucket();
  return {
    name,
    remove: async () => {
      const keys: string[] = [];
      for await (const entry of client.list("")) if (entry.kind === "object") keys.push(entry.key);
      await client.deleteMany(keys);
      await client.deleteBucket().catch(() => {});
    },
  };
}

/** Berth's `storage.s3` settings for a bucket of the test store (Ceph: path-style, copies whole). */
export function s3Config(bucket: string, overrides: Partial<S3Config> = {}): S3Config {
  const env = s3TestEnv();
  if (!env) throw new Error("no S3 test store");
  return {
    accessKey: env.accessKey,
    secretKey: env.secretKey,
    region: env.region,
    regionEndpoint: env.endpoint,
    bucket,
    rootDirectory: "",
    chunkSize: 5 * 1024 * 1024,
    forcePathStyle: true,
    multipartCopyThresholdSize: 5 * 1024 * 1024 * 1024,
    multipartCopyChunkSize: 32 * 1024 * 1024,
    redirect: true,
    ...overrides,
  };
}

/** A distribution 2.8.2 (`docker-registry`) serving a bucket of the test store. */
export async function startS3Distribution(
  bucket: string,
  rootDirectory = "",
): Promise<{ host: string; stop(): Promise<void> }> {
  const env = s3TestEnv();
  if (!env) throw new Error("no S3 test store");
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const dir = await Deno.makeTempDir({ prefix: "berth-distribution-s3-" });
  const config = `${dir}/config.yml`;
  await Deno.writeTextFile(
    config,
    [
      "version: 0.1",
      "log: {level: error}",
      "storage:",
      "  s3:",
      `    accesskey: ${env.accessKey}`,
      `    secretkey: ${env.secretKey}`,
      `    region: ${env.region}`,
      `    regionendpoint: ${env.endpoint}`,
      `    bucket: ${bucket}`,
      ...(rootDirectory ? [`    rootdirectory: /${rootDirectory}`] : []),
      "    secure: false",
      "    v4auth: true",
      "    chunksize: 5242880",
      "    multipartcopythresholdsize: 5368709120",
      "  delete: {enabled: true}",
      "  maintenance: {uploadpurging: {enabled: false}}",
      "http:",
      `  addr: 127.0.0.1:${port}`,
      "",
    ].join("\n"),
  );
  // Its AWS SDK fails at start when AWS_CA_BUNDLE is set in the environment: give it a clean one.
  const process = new Deno.Command("docker-registry", {
    args: ["serve", config],
    clearEnv: true,
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", HOME: dir },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(process.stderr).text();
  const host = `127.0.0.1:${port}`;
  const stop = async () => {
    try {
      process.kill("SIGTERM");
    } catch { /* gone */ }
    await process.status;
    await stderr;
    await Deno.remove(dir, { recursive: true });
  };
  for (let attempt = 0; attempt < 200; attempt++) {
    try {
      const response = await fetch(`http://${host}/v2/`);
      await response.body?.cancel();
      if (response.status === 200) return { host, stop };
    } catch { /* not up yet */ }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await stop();
  throw new Error(`docker-registry did not start: ${await stderr}`);
}

/**
 * A round-robin HTTP proxy on 127.0.0.1 in front of `backends` (base URLs): each request goes to
 * the next one, as a load balancer without affinity does. Redirects are passed to the client.
 */
export function roundRobin(
  backends: string[],
): { url: string; host: string; close(): Promise<void> } {
  let next = 0;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      const target = backends[next++ % backends.length]!;
      const url = new URL(request.url);
      const forwarded = new Headers(request.headers);
      forwarded.delete("host");
      const response = await fetch(`${target}${url.pathname}${url.search}`, {
        method: request.method,
        headers: forwarded,
        // Buffered: Deno 2.8.2's fetch sends a wrong Content-Length when it relays a request's
        // body stream (measured: 294,066 of 302,108 bytes). Test blobs are small.
        body: request.body ? await request.arrayBuffer() : null,
        redirect: "manual",
      });
      const headers = new Headers(response.headers);
      // Locations are relative to the registry: keep the client on the proxy.
      const location = headers.get("location");
      if (location?.startsWith(target)) headers.set("location", location.slice(target.length));
      return new Response(request.method === "HEAD" ? null : response.body, {
        status: response.status,
        headers,
      });
    },
  );
  const port = server.addr.port;
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    close: () => server.shutdown(),
  };
}
