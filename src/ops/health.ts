/**
 * The health probe: the store's storage is reachable and (unless read-only) takes a durable
 * write (see `Store.checkHealth`: a probe file in the store's temporary folder, removed at once).
 *
 * @module
 */
import type { Config } from "../config.ts";
import type { Store } from "../storage/store.ts";

/** What the probe found. */
export interface HealthReport {
  /** `ok` or `unavailable`. */
  status: "ok" | "unavailable";
  /** Each check and its result. */
  checks: Record<string, string>;
}

/** Probe `store` (a write too, unless `config` is read-only). */
export async function checkHealth(config: Config, store: Store): Promise<HealthReport> {
  try {
    const { ok, checks } = await store.checkHealth(!config.readOnly);
    return { status: ok ? "ok" : "unavailable", checks };
  } catch (error) {
    return { status: "unavailable", checks: { storage: `failed: ${(error as Error).message}` } };
  }
}
