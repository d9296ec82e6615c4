/**
 * `GET /v2/_catalog`: repository names, sorted, paginated with `n` and `last`, read from the
 * store's index (never a walk of the tree); only what the caller may pull is listed.
 *
 * @module
 */
import { pageHeaders, parsePage } from "../http/pagination.ts";
import type { Handler } from "../http/router.ts";
import type { Registry } from "../services/registry.ts";

/** Handlers of `/v2/_catalog`. */
export function catalogHandlers(registry: Registry): Record<"list", Handler> {
  return {
    async list({ request, url }) {
      const page = parsePage(url, registry.config.maxListEntries);
      const { authorizer, store } = registry;
      const want = page.limit + 1;
      const found: string[] = [];
      let last = page.last;
      while (page.limit > 0 && found.length < want) {
        const batch = await store.repositoryPage(last, want);
        found.push(...batch.filter((name) => authorizer.canPull(request, name)));
        if (batch.length < want) break;
        last = batch[batch.length - 1];
      }
      const entries = found.slice(0, page.limit);
      return new Response(JSON.stringify({ repositories: entries }), {
        headers: pageHeaders(url.pathname, page, entries, found.length > page.limit),
      });
    },
  };
}
