/**
 * `GET /v2/_catalog`: repository names, sorted, paginated with `n` and `last`; only what the
 * caller may pull is listed.
 *
 * @module
 */
import { jsonPage, pageHeaders, parsePage } from "../http/pagination.ts";
import type { Handler } from "../http/router.ts";
import type { Registry } from "../services/registry.ts";

/** Handlers of `/v2/_catalog`. */
export function catalogHandlers(registry: Registry): Record<"list", Handler> {
  return {
    async list({ url, identity }) {
      const page = parsePage(url, registry.config.maxListEntries);
      const view = registry.authorizer.catalogView(identity);
      const { entries, more } = await registry.catalog.list(page.limit, page.last, view);
      return jsonPage({ repositories: entries }, pageHeaders(url.pathname, page, entries, more));
    },
  };
}
