/**
 * The shared driver suite against the S3 driver on a real S3-compatible store (one fresh bucket
 * per test).
 *
 * @module
 */
import { S3Driver } from "../../src/storage/drivers/s3.ts";
import { s3Options, skipWithoutS3, tempBucket } from "../helpers/s3.ts";
import { driverSuite } from "./driver_suite.ts";

driverSuite("s3", async () => {
  const bucket = await tempBucket();
  return { driver: new S3Driver(s3Options(bucket.name)), cleanup: bucket.remove };
}, { ignore: skipWithoutS3(), partialBytes: 6 * 1024 * 1024 });
