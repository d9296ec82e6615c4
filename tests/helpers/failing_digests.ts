/**
 * A digest worker that dies on purpose, for tests of what an upload does when it loses its
 * digest thread.
 *
 * @module
 */
import { digestWorkerSource } from "../../src/oci/digest_thread.ts";

/** The digest worker's source, made to throw (and so die) on its `count`th update. */
export function failingDigestSource(count: number): string {
  return `${digestWorkerSource()}
let updates = 0;
self.addEventListener("message", (event) => {
  if (event.data.op === "update" && ++updates === ${count}) throw new Error("worker failed");
});
`;
}
