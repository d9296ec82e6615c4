/**
 * Manifest GET, HEAD, PUT and DELETE.
 *
 * @module
 */
import { ifNoneMatch } from "../http/conditional.ts";
import { Reply } from "../http/reply.ts";
import type { Handler } from "../http/router.ts";
import type { Registry } from "../services/registry.ts";
import { empty, repoName, requireDeletes } from "./common.ts";

/** Handlers of `/v2/<name>/manifests/<reference>`. */
export function manifestHandlers(registry: Registry): Record<"get" | "put" | "delete", Handler> {
  const { manifests } = registry;
  return {
    async get(ctx) {
      const { request, params } = ctx;
      const name = repoName(params);
      const manifest = await manifests.get(name, params.reference ?? "");
      const etag = `"${manifest.digest.value}"`;
      const headers = {
        "Content-Type": manifest.mediaType,
        "Content-Length": String(manifest.bytes.byteLength),
        "Docker-Content-Digest": manifest.digest.value,
        "ETag": etag,
      };
      if (ifNoneMatch(request.headers.get("If-None-Match"), etag)) return new Reply(304, headers);
      const body = request.method === "HEAD" ? null : manifest.bytes;
      if (body) {
        await registry.events?.manifest(ctx, "pull", name, params.reference ?? "", manifest);
      }
      return new Reply(200, headers, body);
    },

    async put(ctx) {
      const { request, params, url, body } = ctx;
      const name = repoName(params);
      const result = await manifests.put(
        name,
        params.reference ?? "",
        request.headers.get("Content-Type") ?? "",
        body,
        { tags: url.searchParams.getAll("tag") },
      );
      const headers: Record<string, string> = {
        "Location": `/v2/${name}/manifests/${result.digest.value}`,
        "Docker-Content-Digest": result.digest.value,
      };
      if (result.subject) headers["OCI-Subject"] = result.subject.value;
      const pushed = registry.events && await manifests.load(result.digest);
      if (pushed) {
        await registry.events?.manifest(ctx, "push", name, params.reference ?? "", pushed);
        for (const deleted of result.retained) {
          await registry.events?.deleted(ctx, name, deleted.reference);
        }
      }
      const response = empty(201, headers);
      // One `OCI-Tag` header per tag applied from `?tag=` (OCI 1.1 push by digest with tags).
      for (const tag of result.tags) response.headers.append("OCI-Tag", tag);
      return response;
    },

    async delete(ctx) {
      requireDeletes(registry);
      const name = repoName(ctx.params);
      await manifests.delete(name, ctx.params.reference ?? "");
      await registry.events?.deleted(ctx, name, ctx.params.reference ?? "");
      return empty(202);
    },
  };
}
