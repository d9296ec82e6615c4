/**
 * Blob GET, HEAD and DELETE: exact bytes, `ETag`, single ranges (206/416).
 *
 * @module
 */
import { RegistryError } from "../errors.ts";
import { ifNoneMatch } from "../http/conditional.ts";
import { parseRange } from "../http/range.ts";
import { Reply } from "../http/reply.ts";
import type { Handler } from "../http/router.ts";
import { parseDigest } from "../oci/digest.ts";
import type { Registry } from "../services/registry.ts";
import { empty, repoName, requireDeletes, respond } from "./common.ts";

/** Handlers of `/v2/<name>/blobs/<digest>`. */
export function blobHandlers(registry: Registry): Record<"get" | "delete", Handler> {
  return {
    async get(ctx) {
      const { request, params } = ctx;
      const name = repoName(params);
      const digest = parseDigest(params.digest ?? "");
      const size = await registry.blobs.stat(name, digest);
      const etag = `"${digest.value}"`;
      const headers: Record<string, string> = {
        "Content-Type": "application/octet-stream",
        "Docker-Content-Digest": digest.value,
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Cache-Control": "max-age=31536000",
      };
      if (ifNoneMatch(request.headers.get("If-None-Match"), etag)) return new Reply(304, headers);
      // Object stores: the client fetches the bytes from the store (Range and all), as distribution.
      const redirect = request.method === "GET"
        ? await registry.blobs.redirectUrl(digest)
        : undefined;
      if (request.method === "GET") await registry.events?.blob(ctx, "pull", name, digest);
      if (redirect) {
        return new Response(null, {
          status: 307,
          headers: { Location: redirect, "Docker-Content-Digest": digest.value },
        });
      }
      let range = parseRange(request.headers.get("Range"), size);
      const ifRange = request.headers.get("If-Range");
      if (range && ifRange !== null && ifRange.trim() !== etag) range = undefined;
      if (range === "unsatisfiable") {
        throw new RegistryError("RANGE_NOT_SATISFIABLE", { size }, {
          headers: { "Content-Range": `bytes */${size}` },
        });
      }
      const length = range ? range.end - range.start + 1 : size;
      headers["Content-Length"] = String(length);
      const status = range ? 206 : 200;
      if (range) headers["Content-Range"] = `bytes ${range.start}-${range.end}/${size}`;
      if (request.method === "HEAD") return new Reply(status, headers);
      const content = await registry.blobs.open(digest, range);
      return respond(content.body, status, headers);
    },

    async delete(ctx) {
      requireDeletes(registry);
      const name = repoName(ctx.params);
      const digest = parseDigest(ctx.params.digest ?? "");
      await registry.blobs.delete(name, digest);
      await registry.events?.deleted(ctx, name, digest.value);
      return empty(202);
    },
  };
}
