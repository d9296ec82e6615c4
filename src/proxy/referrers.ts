/**
 * Referrers of mirrored repositories: asked of the upstream, the local index when it cannot answer.
 *
 * @module
 */
import type { Digest } from "../oci/digest.ts";
import type { Descriptor } from "../oci/manifest.ts";
import type { MaintenanceLog } from "../services/maintenance.ts";
import type { ManifestService } from "../services/manifests.ts";
import { type ReferrerList, ReferrerService } from "../services/referrers.ts";
import type { Store } from "../storage/store.ts";
import type { Mirrors } from "./mirrors.ts";

/** Referrers with mirrored repositories proxied to their upstream. */
export class MirroredReferrers extends ReferrerService {
  readonly #mirrors: Mirrors;
  readonly #log: MaintenanceLog;

  /** Referrers over `store`, mirroring through `mirrors`. */
  constructor(store: Store, manifests: ManifestService, mirrors: Mirrors, log: MaintenanceLog) {
    super(store, manifests);
    this.#mirrors = mirrors;
    this.#log = log;
  }

  override async list(
    name: string,
    subject: Digest,
    artifactType?: string,
  ): Promise<ReferrerList> {
    const route = this.#mirrors.route(name);
    if (!route) return await super.list(name, subject, artifactType);
    let found: Descriptor[];
    try {
      found = await route.mirror.client.referrers(route.upstream, subject.value);
    } catch (error) {
      route.mirror.counters.upstreamErrors++;
      route.mirror.counters.staleServes++;
      this.#log("error", "mirror: upstream referrers unavailable, answering the cached ones", {
        mirror: route.mirror.label,
        repository: name,
        subject: subject.value,
        error: error instanceof Error ? error.message : String(error),
      });
      return await super.list(name, subject, artifactType);
    }
    route.mirror.counters.misses++;
    const descriptors = found
      .filter((d) => artifactType === undefined || d.artifactType === artifactType)
      .sort((a, b) => a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0);
    return { descriptors, filtered: artifactType !== undefined };
  }
}
