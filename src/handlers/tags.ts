/**
 * `GET /v2/<name>/tags/list`: the repository's tags, sorted, paginated with `n` and `last`.
 *
 * @module
 */
import { RegistryError } from "../errors.ts";
import { pageHeaders, parsePage } from "../http/pagination.ts";
import type { Handler } from "../http/router.ts";
import type { Registry } from "../services/registry.ts";
import { repoName } from "./common.ts";

/** Handlers of `/v2/<name>/tags/list`. */
export function tagHandlers(registry: Registry): Record<"list", Handler> {
  return {
    async list({ params, url }) {
      const name = repoName(params);
      const page = parsePage(url, registry.config.maxListEntries);
      const tags = await registry.store.listTags(name);
      if (!tags) throw new RegistryError("NAME_UNKNOWN", { name });
      tags.sort((a, b) => a < b ? -1 : a > b ? 1 : 0);
      const start = page.last === undefined ? 0 : tags.findIndex((tag) => tag > page.last!);
      const from = start < 0 ? tags.length : start;
      const entries = tags.slice(from, from + page.limit);
      const more = from + entries.length < tags.length;
      return new Response(JSON.stringify({ name, tags: entries }), {
        headers: pageHeaders(url.pathname, page, entries, more),
      });
    },
  };
}
