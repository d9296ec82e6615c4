/**
 * Upload endpoints: open (POST, monolithic or mount), PATCH a chunk, GET status, PUT to close,
 * DELETE to cancel.
 *
 * @module
 */
import { RegistryError } from "../errors.ts";
import { parseContentLength, parseContentRange } from "../http/range.ts";
import type { Handler, RequestContext } from "../http/router.ts";
import { parseDigest } from "../oci/digest.ts";
import { checkName } from "../oci/names.ts";
import type { Registry } from "../services/registry.ts";
import type { Chunk } from "../services/uploads.ts";
import { empty, repoName } from "./common.ts";

/** Handlers of `/v2/<name>/blobs/uploads/[<id>]`. */
export function uploadHandlers(
  registry: Registry,
): Record<"start" | "patch" | "status" | "put" | "cancel", Handler> {
  const { uploads } = registry;

  const sessionHeaders = (name: string, id: string, size: number) => ({
    "Location": uploadLocation(name, id),
    "Range": rangeHeader(size),
    "Docker-Upload-UUID": id,
  });

  const created = (name: string, digest: string) =>
    empty(201, { "Location": `/v2/${name}/blobs/${digest}`, "Docker-Content-Digest": digest });

  return {
    async start(ctx) {
      const name = repoName(ctx.params);
      const query = ctx.url.searchParams;
      // A mount the caller may not read from is a plain upload (src/auth/access_control.ts).
      const mount = ctx.access.mount ? query.get("mount") : null;
      if (mount !== null) {
        const digest = parseDigest(mount);
        const from = query.get("from");
        if (from !== null) checkName(from);
        await ctx.body?.cancel();
        if (await uploads.mount(name, digest, from ?? undefined)) {
          await registry.events?.blob(ctx, "mount", name, digest, from ?? undefined);
          return created(name, digest.value);
        }
      }
      const digestParam = mount === null ? query.get("digest") : null;
      if (digestParam !== null) {
        const digest = parseDigest(digestParam);
        await uploads.monolithic(name, digest, chunkOf(ctx, false));
        await registry.events?.blob(ctx, "push", name, digest);
        return created(name, digest.value);
      }
      await ctx.body?.cancel();
      const id = await uploads.start(name);
      return empty(202, sessionHeaders(name, id, 0));
    },

    async patch(ctx) {
      const name = repoName(ctx.params);
      const id = ctx.params.id ?? "";
      const size = await onSession(name, id, () => uploads.append(name, id, chunkOf(ctx, true)));
      return empty(202, sessionHeaders(name, id, size));
    },

    async status(ctx) {
      const name = repoName(ctx.params);
      const id = ctx.params.id ?? "";
      const size = await uploads.status(name, id);
      return empty(204, sessionHeaders(name, id, size));
    },

    async put(ctx) {
      const name = repoName(ctx.params);
      const id = ctx.params.id ?? "";
      const digestParam = ctx.url.searchParams.get("digest");
      if (digestParam === null) {
        await ctx.body?.cancel();
        throw new RegistryError("DIGEST_INVALID", null, {
          message: "closing an upload needs ?digest=",
        });
      }
      const digest = parseDigest(digestParam);
      await onSession(name, id, () => uploads.complete(name, id, digest, chunkOf(ctx, true)));
      return created(name, digest.value);
    },

    async cancel(ctx) {
      const name = repoName(ctx.params);
      await uploads.cancel(name, ctx.params.id ?? "");
      return empty(204);
    },
  };
}

/** The chunk a request carries, with its declared length and (for PATCH/PUT) range. */
function chunkOf(ctx: RequestContext, withRange: boolean): Chunk {
  const { request } = ctx;
  const length = parseContentLength(request.headers.get("Content-Length"));
  if (length === "invalid") {
    throw new RegistryError("SIZE_INVALID", null, { message: "invalid Content-Length" });
  }
  // A client that goes away fails the body read, which stops the append.
  const chunk: Chunk = { body: ctx.body };
  if (length !== undefined) chunk.length = length;
  if (length === 0) chunk.body = null;
  if (withRange) {
    const range = parseContentRange(request.headers.get("Content-Range"));
    if (range === "invalid") {
      throw new RegistryError("UPLOAD_RANGE_INVALID", null, {
        message: "invalid Content-Range: expected <start>-<end>",
      });
    }
    if (range) {
      const declared = range.end - range.start + 1;
      if (length !== undefined && length !== declared) {
        throw new RegistryError("SIZE_INVALID", { contentLength: length, contentRange: declared }, {
          message: "Content-Length does not match Content-Range",
        });
      }
      chunk.start = range.start;
      chunk.length = declared;
    }
  }
  return chunk;
}

/** The `Range` header of a session holding `size` bytes (`0-0` when empty, as distribution). */
export function rangeHeader(size: number): string {
  return `0-${Math.max(0, size - 1)}`;
}

/** The URL of an upload session. */
export function uploadLocation(name: string, id: string): string {
  return `/v2/${name}/blobs/uploads/${id}`;
}

/**
 * Run a chunk's append: a chunk out of order (the service reports the offset it expected)
 * answers with the session's `Range` and `Location`, so the client can resume.
 */
async function onSession<T>(name: string, id: string, append: () => Promise<T>): Promise<T> {
  try {
    return await append();
  } catch (error) {
    const expected = (error as RegistryError).detail as { expected?: unknown } | null;
    if (
      error instanceof RegistryError && error.kind === "UPLOAD_RANGE_INVALID" &&
      typeof expected?.expected === "number"
    ) {
      throw new RegistryError(error.kind, error.detail, {
        message: error.message,
        headers: { Range: rangeHeader(expected.expected), Location: uploadLocation(name, id) },
      });
    }
    throw error;
  }
}
