/**
 * Runs the store conformance suite against {@link MemoryStore}.
 *
 * @module
 */
import { MemoryStore } from "../../src/storage/memory/memory_store.ts";
import { storeSuite } from "./store_suite.ts";

storeSuite(
  "memory",
  () => Promise.resolve({ store: new MemoryStore(), cleanup: () => Promise.resolve() }),
);
