/**
 * A lease in shared storage: at most one holder at a time among the processes that share a
 * driver (online garbage collection on one replica at a time).
 *
 * The lease is a folder of generations, `<dir>/<n>`, each `{owner, expiresAt}`. A generation is
 * only ever created exclusively (S3: `If-None-Match: *`), so of the contenders for an expired or
 * released generation `n` exactly one creates `n + 1`. Drivers without exclusive creation (the
 * filesystem and memory drivers, one host) grant the lease within this process only.
 *
 * @module
 */
import type { StorageDriver } from "./driver.ts";

/** A driver that can create a file only where none is. */
export interface ExclusiveCreate {
  /** Create `path` with `content` unless something is there; `false` when something is. */
  createExclusive(path: string, content: Uint8Array): Promise<boolean>;
}

interface Record {
  owner: string;
  expiresAt: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One process's handle on a lease. */
export class StorageLease {
  readonly #driver: StorageDriver & Partial<ExclusiveCreate>;
  readonly #dir: string;
  readonly #owner: string;
  readonly #ttlMs: number;
  readonly #now: () => number;
  #generation: number | undefined;
  #expiresAt = 0;

  /**
   * A handle on the lease kept in folder `dir` of `driver`, for `owner` (unique per process),
   * held `ttlMs` from each acquire or renew.
   */
  constructor(
    driver: StorageDriver & Partial<ExclusiveCreate>,
    dir: string,
    owner: string,
    ttlMs: number,
    now: () => number = Date.now,
  ) {
    this.#driver = driver;
    this.#dir = dir;
    this.#owner = owner;
    this.#ttlMs = ttlMs;
    this.#now = now;
  }

  /** Whether this handle holds the lease now (by its own clock). */
  get held(): boolean {
    return this.#generation !== undefined && this.#now() < this.#expiresAt;
  }

  /** Whether half of the held time is spent (time to renew). */
  get renewDue(): boolean {
    return this.#expiresAt - this.#now() < this.#ttlMs / 2;
  }

  /** Take the lease unless another owner holds it unexpired; `true` when this handle holds it. */
  async acquire(): Promise<boolean> {
    if (!this.#driver.createExclusive) {
      this.#generation = 0;
      this.#expiresAt = this.#now() + this.#ttlMs;
      return true;
    }
    const generations = ((await this.#driver.list(this.#dir)) ?? [])
      .filter((name) => /^\d{1,15}$/.test(name))
      .map(Number)
      .sort((a, b) => a - b);
    const top = generations.at(-1);
    if (top !== undefined) {
      const current = await this.#read(top);
      if (current && current.expiresAt > this.#now()) {
        if (current.owner !== this.#owner) return false;
        this.#generation = top;
        return await this.renew();
      }
    }
    const next = (top ?? 0) + 1;
    const expiresAt = this.#now() + this.#ttlMs;
    const record = encoder.encode(JSON.stringify({ owner: this.#owner, expiresAt }));
    if (!(await this.#driver.createExclusive(this.#path(next), record))) return false;
    // A retried create may have found its own object: check whose it is.
    if ((await this.#read(next))?.owner !== this.#owner) return false;
    this.#generation = next;
    this.#expiresAt = expiresAt;
    for (const old of generations) {
      if (old < next - 1) await this.#driver.delete(this.#path(old)).catch(() => {});
    }
    return true;
  }

  /** Extend a held lease by the TTL; `false` (and no longer held) when it was lost or expired. */
  async renew(): Promise<boolean> {
    const generation = this.#generation;
    if (generation === undefined) return false;
    if (!this.#driver.createExclusive) {
      this.#expiresAt = this.#now() + this.#ttlMs;
      return true;
    }
    const [current, taken] = await Promise.all([this.#read(generation), this.#taken(generation)]);
    if (taken || current?.owner !== this.#owner || current.expiresAt <= this.#now()) {
      this.#generation = undefined;
      return false;
    }
    const expiresAt = this.#now() + this.#ttlMs;
    await this.#write(generation, expiresAt);
    this.#expiresAt = expiresAt;
    return true;
  }

  /** Give the lease up at once (others need not wait for it to expire). */
  async release(): Promise<void> {
    const generation = this.#generation;
    this.#generation = undefined;
    this.#expiresAt = 0;
    if (generation === undefined || !this.#driver.createExclusive) return;
    const [current, taken] = await Promise.all([this.#read(generation), this.#taken(generation)]);
    if (!taken && current?.owner === this.#owner) await this.#write(generation, 0);
  }

  /** Whether the generation after `generation` exists (one GET: a stat would also list). */
  async #taken(generation: number): Promise<boolean> {
    return (await this.#driver.getContent(this.#path(generation + 1))) !== undefined;
  }

  #path(generation: number): string {
    return `${this.#dir}/${String(generation).padStart(12, "0")}`;
  }

  async #read(generation: number): Promise<Record | undefined> {
    const bytes = await this.#driver.getContent(this.#path(generation));
    if (!bytes) return undefined;
    try {
      const value = JSON.parse(decoder.decode(bytes));
      return typeof value?.owner === "string" && typeof value?.expiresAt === "number"
        ? value
        : undefined;
    } catch {
      return undefined;
    }
  }

  async #write(generation: number, expiresAt: number): Promise<void> {
    const record = encoder.encode(JSON.stringify({ owner: this.#owner, expiresAt }));
    await this.#driver.putContent(this.#path(generation), record);
  }
}
