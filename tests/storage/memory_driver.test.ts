/**
 * Runs the driver conformance suite against {@link MemoryDriver}.
 *
 * @module
 */
import { MemoryDriver } from "../../src/storage/drivers/memory.ts";
import { driverSuite } from "./driver_suite.ts";

driverSuite(
  "memory",
  () => Promise.resolve({ driver: new MemoryDriver(), cleanup: () => Promise.resolve() }),
);
