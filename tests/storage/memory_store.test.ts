/**
 * Runs the store conformance suite against the layout over the memory driver.
 *
 * @module
 */
import { memoryStore } from "../../src/storage/open_store.ts";
import { storeSuite } from "./store_suite.ts";

storeSuite(
  "memory",
  () => Promise.resolve({ store: memoryStore(), cleanup: () => Promise.resolve() }),
);
