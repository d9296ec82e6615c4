/**
 * Tag lists of mirrored repositories: the upstream's list when it answers, else the tags cached
 * here (as distribution's proxy: remote first, local when the remote fails). Pagination (`n`,
 * `last`) is applied here to the whole upstream list.
 *
 * @module
 */
import { ClientError } from "../client/errors.ts";
import { RegistryError } from "../errors.ts";
import type { MaintenanceLog } from "../services/maintenance.ts";
import { type Page, TagService } from "../services/tags.ts";
import type { Store } from "../storage/store.ts";
import type { Mirrors } from "./mirrors.ts";

/** Tags with mirrored repositories listed by their upstream. */
export class MirroredTags extends TagService {
  readonly #mirrors: Mirrors;
  readonly #log: MaintenanceLog;

  /** Tags over `store`, mirroring through `mirrors`. */
  constructor(store: Store, mirrors: Mirrors, log: MaintenanceLog) {
    super(store);
    this.#mirrors = mirrors;
    this.#log = log;
  }

  override async list(name: string, limit: number, last?: string): Promise<Page> {
    const route = this.#mirrors.route(name);
    if (!route) return await super.list(name, limit, last);
    const counters = route.mirror.counters;
    let tags: string[];
    try {
      tags = await route.mirror.client.listTags(route.upstream);
    } catch (error) {
      const missing = error instanceof ClientError && error.kind === "not-found";
      if (!missing) {
        counters.upstreamErrors++;
        counters.staleServes++;
        this.#log("error", "mirror: upstream tags unavailable, listing the cached ones", {
          mirror: route.mirror.label,
          repository: name,
          error: error instanceof Error ? error.message : String(error),
        });
      }
      try {
        return await super.list(name, limit, last);
      } catch (local) {
        // Nothing cached either: the upstream's answer stands.
        if (missing || !(local instanceof RegistryError)) throw local;
        throw new RegistryError("UNAVAILABLE", { mirror: route.mirror.label }, {
          message: `upstream ${route.mirror.config.remoteUrl}: ${(error as Error).message}`,
          headers: { "Retry-After": "5" },
        });
      }
    }
    counters.misses++;
    const sorted = [...new Set(tags)].sort((a, b) => a < b ? -1 : a > b ? 1 : 0);
    const from = last === undefined ? 0 : sorted.findIndex((tag) => tag > last);
    const start = from < 0 ? sorted.length : from;
    const entries = sorted.slice(start, start + limit);
    return { entries, more: start + entries.length < sorted.length };
  }
}
