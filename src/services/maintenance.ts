/**
 * The server's background work: garbage collection on a schedule (`config.gc.intervalMs`) and
 * purging of stale upload sessions (`config.uploadPurging`). Timers are chained `setTimeout`s
 * owned by this object (a delay longer than one timer can hold is waited out in steps);
 * {@link Maintenance.close} stops them and waits for work under way.
 *
 * @module
 */
import type { Config } from "../config.ts";
import { MirroredManifests } from "../proxy/manifests.ts";
import type { GcReport } from "./gc.ts";
import type { Registry } from "./registry.ts";

/** Longest delay one `setTimeout` can hold (2^31-1 ms, ~24.8 days); a longer one fires at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A cancellable wait of any length (see {@link setLongTimeout}). */
export interface LongTimer {
  /** Stop the wait; the callback will not run. */
  cancel(): void;
}

/**
 * Run `callback` once after `delayMs`, however long: delays beyond what one timer holds
 * ({@link MAX_TIMER_MS}, or `maxStepMs`) are chained, measured on the monotonic clock.
 */
export function setLongTimeout(
  callback: () => void,
  delayMs: number,
  maxStepMs: number = MAX_TIMER_MS,
): LongTimer {
  const due = performance.now() + delayMs;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    const left = due - performance.now();
    if (left <= 0) {
      timer = undefined;
      callback();
      return;
    }
    timer = setTimeout(arm, Math.min(Math.ceil(left), maxStepMs));
  };
  timer = setTimeout(arm, Math.min(Math.max(0, Math.ceil(delayMs)), maxStepMs));
  return { cancel: () => clearTimeout(timer) };
}

/** Where background work reports. */
export type MaintenanceLog = (
  level: "info" | "error",
  message: string,
  fields: Record<string, unknown>,
) => void;

/** What background work uses of the registry. */
export type MaintainedRegistry =
  & Pick<Registry, "config" | "store" | "uploads" | "gc">
  & Partial<Pick<Registry, "manifests">>;

/** Background tasks of one app. */
export class Maintenance {
  readonly #registry: MaintainedRegistry;
  readonly #log: MaintenanceLog;
  readonly #timers = new Set<LongTimer>();
  readonly #running = new Set<Promise<unknown>>();
  #closed = false;

  /** Maintenance of `registry`, reporting to `log`. */
  constructor(registry: MaintainedRegistry, log: MaintenanceLog) {
    this.#registry = registry;
    this.#log = log;
  }

  /** Start the schedules the config asks for. */
  start(): void {
    const { gc, uploadPurging } = this.#registry.config;
    if (gc.intervalMs > 0) this.#every(gc.intervalMs, () => this.collect());
    if (uploadPurging.enabled && uploadPurging.intervalMs > 0) {
      this.#every(uploadPurging.intervalMs, () => this.purgeUploads());
    }
  }

  /** Run an online collection now (with the configured grace period). */
  collect(options: { dryRun?: boolean } = {}): Promise<GcReport> {
    const config: Config = this.#registry.config;
    // Mirrors with a ttl unlink what went unused first, so the collection frees it.
    const manifests = this.#registry.manifests;
    const expired = manifests instanceof MirroredManifests && !options.dryRun
      ? manifests.expire()
      : Promise.resolve(0);
    return this.#track(
      expired.then(() =>
        this.#registry.gc.run({ gracePeriodMs: config.gc.gracePeriodMs, ...options })
      ).then(
        (report) => {
          this.#log("info", "garbage collection", {
            dryRun: report.dryRun,
            blobsDeleted: report.blobsDeletedCount,
            bytesFreed: report.bytesFreed,
            durationMs: report.durationMs,
          });
          return report;
        },
      ),
    );
  }

  /** Remove upload sessions older than the configured age; returns `name/id` of each. */
  purgeUploads(): Promise<string[]> {
    const { ageMs, dryRun } = this.#registry.config.uploadPurging;
    return this.#track((async () => {
      const removed: string[] = [];
      const { store, uploads } = this.#registry;
      for (const name of await store.listRepositories()) {
        if (dryRun) {
          const now = Date.now();
          for (const { id, startedAt } of await store.listUploads(name)) {
            if (now - startedAt.getTime() >= ageMs) removed.push(`${name}/${id}`);
          }
          continue;
        }
        for (const id of await uploads.purge(name, ageMs)) removed.push(`${name}/${id}`);
      }
      if (removed.length > 0) {
        this.#log("info", "upload purging", { dryRun, sessions: removed.length });
      }
      return removed;
    })());
  }

  /** Stop the schedules and wait for work under way. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const timer of this.#timers) timer.cancel();
    this.#timers.clear();
    await Promise.allSettled([...this.#running]);
    // The cache's recorded uses outlive the process (its ttl is measured by them).
    const manifests = this.#registry.manifests;
    if (manifests instanceof MirroredManifests) await manifests.flushUses();
  }

  #every(intervalMs: number, task: () => Promise<unknown>): void {
    const schedule = () => {
      if (this.#closed) return;
      const timer = setLongTimeout(async () => {
        this.#timers.delete(timer);
        try {
          await task();
        } catch (error) {
          this.#log("error", "background task failed", {
            error: error instanceof Error ? (error.stack ?? error.message) : String(error),
          });
        }
        schedule();
      }, intervalMs);
      this.#timers.add(timer);
    };
    schedule();
  }

  #track<T>(work: Promise<T>): Promise<T> {
    this.#running.add(work);
    const done = () => this.#running.delete(work);
    work.then(done, done);
    return work;
  }
}
