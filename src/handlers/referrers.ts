/**
 * `GET /v2/<name>/referrers/<digest>`: an OCI image index of the manifests whose subject is the
 * digest, filtered by `?artifactType=` (announced with `OCI-Filters-Applied`).
 *
 * @module
 */
import type { Handler } from "../http/router.ts";
import { parseDigest } from "../oci/digest.ts";
import { OCI_INDEX } from "../oci/media_types.ts";
import type { Registry } from "../services/registry.ts";
import { repoName } from "./common.ts";

/** Handlers of `/v2/<name>/referrers/<digest>`. */
export function referrerHandlers(registry: Registry): Record<"list", Handler> {
  return {
    async list({ params, url }) {
      const name = repoName(params);
      const subject = parseDigest(params.digest ?? "");
      const artifactType = url.searchParams.get("artifactType") || undefined;
      const { descriptors, filtered } = await registry.referrers.list(name, subject, artifactType);
      const headers: Record<string, string> = { "Content-Type": OCI_INDEX };
      if (filtered) headers["OCI-Filters-Applied"] = "artifactType";
      const index = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: descriptors };
      return new Response(JSON.stringify(index), { headers });
    },
  };
}
