/**
 * `GET /v2/<name>/tags/list`: the repository's tags, sorted, paginated with `n` and `last`.
 *
 * @module
 */
import { RegistryError } from "../errors.ts";
import { pageHeaders, parsePage } from "../http/pagination.ts";
import type { Handler } from "../http/router.ts";
import type { Registry } from "../services/registry.ts";
import { upperBound } from "../storage/sorted_names.ts";
import { repoName, respond } from "./common.ts";

/** Handlers of `/v2/<name>/tags/list`. */
export function tagHandlers(registry: Registry): Record<"list", Handler> {
  return {
    async list({ params, url }) {
      const name = repoName(params);
      const page = parsePage(url, registry.config.maxListEntries);
      const tags = await registry.store.listTags(name);
      if (!tags) throw new RegistryError("NAME_UNKNOWN", { name });
      tags.sort((a, b) => a < b ? -1 : a > b ? 1 : 0);
      const from = page.last === undefined ? 0 : upperBound(tags, page.last);
      const entries = tags.slice(from, from + page.limit);
      const more = from + entries.length < tags.length;
      return respond(
        JSON.stringify({ name, tags: entries }),
        200,
        pageHeaders(url.pathname, page, entries, more),
      );
    },
  };
}
