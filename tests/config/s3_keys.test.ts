/**
 * The `storage.s3` keys (distribution's), `storage.redirect.disable`, `REGISTRY_STORAGE=s3` with
 * `REGISTRY_STORAGE_S3_*`, and the AWS credential variables.
 *
 * @module
 */
import assert from "node:assert/strict";
import { ConfigError, configToEnv } from "../../src/config_file.ts";
import { parseConfig } from "../../src/config_yaml.ts";

const MIB = 1024 * 1024;

const YAML = `version: 0.1
storage:
  s3:
    accesskey: AKIA
    secretkey: SECRET
    region: eu-west-1
    bucket: registry
    rootdirectory: /berth/
    chunksize: 20971520
    multipartcopythresholdsize: 67108864
    storageclass: STANDARD
  redirect:
    disable: true
`;

Deno.test("config: storage.s3 is read with distribution's defaults", () => {
  const { config, warnings } = parseConfig(YAML);
  assert.equal(config.storage, "s3");
  assert.deepEqual(config.s3, {
    accessKey: "AKIA",
    secretKey: "SECRET",
    region: "eu-west-1",
    regionEndpoint: "https://s3.eu-west-1.amazonaws.com",
    bucket: "registry",
    rootDirectory: "berth",
    chunkSize: 20 * MIB,
    forcePathStyle: false,
    multipartCopyThresholdSize: 64 * MIB,
    multipartCopyChunkSize: 32 * MIB,
    redirect: false,
  });
  assert.ok(warnings.some((w) => w.includes("storage.s3.storageclass")));
});

Deno.test("config: REGISTRY_STORAGE=s3 replaces the file's driver; AWS_* give credentials", () => {
  const file = "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /data\n";
  const { config } = parseConfig(file, {
    env: {
      REGISTRY_STORAGE: "s3",
      REGISTRY_STORAGE_S3_REGION: "us-east-1",
      REGISTRY_STORAGE_S3_BUCKET: "b1",
      REGISTRY_STORAGE_S3_REGIONENDPOINT: "127.0.0.1:7480",
      REGISTRY_STORAGE_S3_SECURE: "false",
      REGISTRY_STORAGE_S3_FORCEPATHSTYLE: "true",
      AWS_ACCESS_KEY_ID: "from-env",
      AWS_SECRET_ACCESS_KEY: "secret-env",
    },
  });
  assert.equal(config.storage, "s3");
  assert.equal(config.s3?.regionEndpoint, "http://127.0.0.1:7480");
  assert.equal(config.s3?.forcePathStyle, true);
  assert.equal(config.s3?.accessKey, "from-env");
  assert.equal(config.s3?.secretKey, "secret-env");
  assert.equal(config.s3?.redirect, true);
  // And back to variables, for child processes in tests.
  const env = configToEnv({ storage: "s3", s3: config.s3! })!;
  const again = parseConfig("", { env });
  assert.deepEqual(again.config.s3, config.s3);
});

Deno.test("config: bad storage.s3 values stop the start, naming the key", () => {
  const base = { REGISTRY_STORAGE: "s3", AWS_ACCESS_KEY_ID: "a", AWS_SECRET_ACCESS_KEY: "s" };
  const cases: [Record<string, string>, RegExp][] = [
    [{ REGISTRY_STORAGE_S3_BUCKET: "b" }, /storage\.s3\.region: required/],
    [{ REGISTRY_STORAGE_S3_REGION: "r" }, /storage\.s3\.bucket: required/],
    [
      {
        REGISTRY_STORAGE_S3_REGION: "r",
        REGISTRY_STORAGE_S3_BUCKET: "b",
        REGISTRY_STORAGE_S3_CHUNKSIZE: "1048576",
      },
      /storage\.s3\.chunksize: at least/,
    ],
    [
      {
        REGISTRY_STORAGE_S3_REGION: "r",
        REGISTRY_STORAGE_S3_BUCKET: "b",
        REGISTRY_STORAGE_S3_V4AUTH: "false",
      },
      /storage\.s3\.v4auth/,
    ],
    [
      {
        REGISTRY_STORAGE_S3_REGION: "r",
        REGISTRY_STORAGE_S3_BUCKET: "b",
        REGISTRY_STORAGE_S3_ENCRYPT: "true",
      },
      /storage\.s3\.encrypt/,
    ],
  ];
  for (const [env, message] of cases) {
    assert.throws(() => parseConfig("", { env: { ...base, ...env } }), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, message);
      return true;
    });
  }
  assert.throws(
    () =>
      parseConfig("", {
        env: {
          REGISTRY_STORAGE: "s3",
          REGISTRY_STORAGE_S3_REGION: "r",
          REGISTRY_STORAGE_S3_BUCKET: "b",
        },
      }),
    /AWS_ACCESS_KEY_ID/,
  );
  assert.throws(
    () => parseConfig("", { env: { REGISTRY_STORAGE: "floppy" } }),
    /unknown storage driver/,
  );
});
