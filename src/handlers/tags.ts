/**
 * `GET /v2/<name>/tags/list`: the repository's tags, sorted, paginated with `n` and `last`.
 *
 * @module
 */
import { jsonPage, pageHeaders, parsePage } from "../http/pagination.ts";
import type { Handler } from "../http/router.ts";
import type { Registry } from "../services/registry.ts";
import { repoName } from "./common.ts";

/** Handlers of `/v2/<name>/tags/list`. */
export function tagHandlers(registry: Registry): Record<"list", Handler> {
  return {
    async list({ params, url }) {
      const name = repoName(params);
      const page = parsePage(url, registry.config.maxListEntries);
      const { entries, more } = await registry.tags.list(name, page.limit, page.last);
      return jsonPage({ name, tags: entries }, pageHeaders(url.pathname, page, entries, more));
    },
  };
}
