/**
 * `GET /v2/_catalog`: repository names, sorted, paginated with `n` and `last`, read from the
 * store's index (never a walk of the tree).
 *
 * @module
 */
import { pageHeaders, parsePage } from "../http/pagination.ts";
import type { Handler } from "../http/router.ts";
import type { Registry } from "../services/registry.ts";

/** Handlers of `/v2/_catalog`. */
export function catalogHandlers(registry: Registry): Record<"list", Handler> {
  return {
    async list({ url }) {
      const page = parsePage(url, registry.config.maxListEntries);
      const found = page.limit === 0
        ? []
        : await registry.store.repositoryPage(page.last, page.limit + 1);
      const entries = found.slice(0, page.limit);
      return new Response(JSON.stringify({ repositories: entries }), {
        headers: pageHeaders(url.pathname, page, entries, found.length > page.limit),
      });
    },
  };
}
