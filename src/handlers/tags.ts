/**
 * `GET /v2/<name>/tags/list`: the repository's tags, sorted, paginated with `n` and `last`.
 *
 * @module
 */
import { pageHeaders, parsePage } from "../http/pagination.ts";
import type { Handler } from "../http/router.ts";
import type { Registry } from "../services/registry.ts";
import { repoName, respond } from "./common.ts";

/** Handlers of `/v2/<name>/tags/list`. */
export function tagHandlers(registry: Registry): Record<"list", Handler> {
  return {
    async list({ params, url }) {
      const name = repoName(params);
      const page = parsePage(url, registry.config.maxListEntries);
      const { entries, more } = await registry.tags.list(name, page.limit, page.last);
      return respond(
        JSON.stringify({ name, tags: entries }),
        200,
        pageHeaders(url.pathname, page, entries, more),
      );
    },
  };
}
