/**
 * The health probe: the data directory is there, and (unless read-only) takes a durable write.
 * The probe file lives in the store's own temporary folder and is removed at once.
 *
 * @module
 */
import type { Config } from "../config.ts";
import { S3Driver, s3DriverOptions } from "../storage/drivers/s3.ts";

/** What the probe found. */
export interface HealthReport {
  /** `ok` or `unavailable`. */
  status: "ok" | "unavailable";
  /** Each check and its result. */
  checks: Record<string, string>;
}

/** Probe the store named by `config` (a memory store is always healthy). */
export async function checkHealth(config: Config): Promise<HealthReport> {
  const checks: Record<string, string> = {};
  if (config.storage === "s3" && config.s3) {
    // The bucket answers and (unless read-only) takes a write; retries are the request's own.
    const driver = new S3Driver({ ...s3DriverOptions(config.s3), retries: 0, timeoutMs: 5000 });
    checks.storage = await driver.health(!config.readOnly);
    return { status: checks.storage === "ok" ? "ok" : "unavailable", checks };
  }
  if (config.storage !== "filesystem") return { status: "ok", checks: { storage: "memory" } };
  let ok = true;
  try {
    const info = await Deno.stat(config.dataDir);
    if (!info.isDirectory) throw new Error(`${config.dataDir} is not a directory`);
    checks.storage = "ok";
  } catch (error) {
    ok = false;
    checks.storage = `unreachable: ${(error as Error).message}`;
  }
  if (ok && !config.readOnly) {
    const dir = `${config.dataDir}/docker/registry/v2/_tmp`;
    const probe = `${dir}/healthz-${crypto.randomUUID()}.tmp`;
    try {
      await Deno.mkdir(dir, { recursive: true });
      const file = await Deno.open(probe, { write: true, createNew: true });
      try {
        await file.write(new TextEncoder().encode("ok"));
        await file.sync();
      } finally {
        file.close();
      }
      checks.writable = "ok";
    } catch (error) {
      ok = false;
      checks.writable = `failed: ${(error as Error).message}`;
    } finally {
      await Deno.remove(probe).catch(() => {});
    }
  }
  return { status: ok ? "ok" : "unavailable", checks };
}
