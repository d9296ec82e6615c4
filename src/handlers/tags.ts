/**
 * `GET /v2/<name>/tags/list`: the repository's tags, sorted, paginated with `n` and `last`.
 *
 * @module
 */
import { encodeJson, jsonPage, pageHeaders, parsePage } from "../http/pagination.ts";
import type { Handler } from "../http/router.ts";
import type { Registry } from "../services/registry.ts";
import { repoName } from "./common.ts";

/** Handlers of `/v2/<name>/tags/list`. */
export function tagHandlers(registry: Registry): Record<"list", Handler> {
  // Encoded answers of whole kept listings (a store hands over the same array while the folder is
  // unchanged; each listing is one repository's): a repeated list costs a `stat` and a lookup.
  const encoded = new WeakMap<readonly string[], Uint8Array<ArrayBuffer>>();
  return {
    async list({ params, url }) {
      const name = repoName(params);
      const page = parsePage(url, registry.config.maxListEntries);
      const { entries, more } = await registry.tags.list(name, page.limit, page.last);
      const headers = pageHeaders(url.pathname, page, entries, more);
      if (more) return jsonPage({ name, tags: entries }, headers);
      let body = encoded.get(entries);
      if (!body) {
        body = encodeJson({ name, tags: entries });
        encoded.set(entries, body);
      }
      headers["Content-Length"] = String(body.byteLength);
      return new Response(body, { headers });
    },
  };
}
