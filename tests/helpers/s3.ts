/**
 * The S3 store the tests use: a Ceph radosgw that `scripts/ceph_up.sh` starts, found through
 * `BERTH_TEST_S3_ENDPOINT`, `BERTH_TEST_S3_ACCESS_KEY`, `BERTH_TEST_S3_SECRET_KEY` (and
 * `BERTH_TEST_S3_REGION`). Without them the S3 tests skip on a developer's machine and fail in CI.
 *
 * @module
 */
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

/** A new, empty bucket of the test store, and how to remove it with everything in it. */
export async function tempBucket(): Promise<{ name: string; remove(): Promise<void> }> {
  const name = `berth-test-${crypto.randomUUID().slice(0, 13)}`;
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
