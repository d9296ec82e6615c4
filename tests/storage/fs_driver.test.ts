/**
 * Runs the driver conformance suite against {@link FsDriver}, each test in its own temporary
 * directory.
 *
 * @module
 */
import { FsDriver } from "../../src/storage/drivers/fs.ts";
import { driverSuite } from "./driver_suite.ts";

driverSuite("fs", async () => {
  const root = await Deno.makeTempDir({ prefix: "berth-fs-driver-" });
  return {
    driver: new FsDriver(root),
    cleanup: () => Deno.remove(root, { recursive: true }),
  };
});
