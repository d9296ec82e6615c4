/**
 * The whole `/v2` route table, on one screen.
 *
 * @module
 */
import { adminHandlers } from "../handlers/admin.ts";
import { blobHandlers } from "../handlers/blobs.ts";
import { catalogHandlers } from "../handlers/catalog.ts";
import { manifestHandlers } from "../handlers/manifests.ts";
import { referrerHandlers } from "../handlers/referrers.ts";
import { tagHandlers } from "../handlers/tags.ts";
import { uploadHandlers } from "../handlers/uploads.ts";
import type { Registry } from "../services/registry.ts";
import { Reply } from "./reply.ts";
import { type Handler, Router } from "./router.ts";

/** The body of `GET /v2/` (shared: a Reply's body is only read, and `Response` copies it). */
const BASE_BODY = new TextEncoder().encode("{}");
const BASE_HEADERS = { "Content-Type": "application/json; charset=utf-8" };

const NAME = ":name(.+)";

/** Build the router of a registry. */
export function buildRouter(registry: Registry): Router {
  const blobs = blobHandlers(registry);
  const uploads = uploadHandlers(registry);
  const manifests = manifestHandlers(registry);
  const tags = tagHandlers(registry);
  const catalog = catalogHandlers(registry);
  const referrers = referrerHandlers(registry);
  const admin = adminHandlers(registry);
  // The web UI (its modules, page script and session key) is loaded on its first request: a
  // registry that is never browsed does not pay for it at start.
  let loaded: Promise<Record<"root" | "get" | "post", Handler>> | undefined;
  const uiHandler = (name: "root" | "get" | "post"): Handler => async (ctx) => {
    loaded ??= import("../ui/ui.ts").then((module) => module.uiHandlers(registry));
    return await (await loaded)[name](ctx);
  };
  const ui = { root: uiHandler("root"), get: uiHandler("get"), post: uiHandler("post") };
  const base = () => new Reply(200, BASE_HEADERS, BASE_BODY);
  return new Router()
    .route("base", "/v2/", { GET: base, HEAD: base })
    .route("manifests", `/v2/${NAME}/manifests/:reference`, {
      GET: manifests.get,
      HEAD: manifests.get,
      PUT: manifests.put,
      DELETE: manifests.delete,
    })
    .route("uploads", `/v2/${NAME}/blobs/uploads/`, { POST: uploads.start })
    .route("uploads", `/v2/${NAME}/blobs/uploads/:id`, {
      GET: uploads.status,
      PATCH: uploads.patch,
      PUT: uploads.put,
      DELETE: uploads.cancel,
    })
    .route("blobs", `/v2/${NAME}/blobs/:digest`, {
      GET: blobs.get,
      HEAD: blobs.get,
      DELETE: blobs.delete,
    })
    .route("catalog", "/v2/_catalog", { GET: catalog.list, HEAD: catalog.list })
    .route("tags", `/v2/${NAME}/tags/list`, { GET: tags.list, HEAD: tags.list })
    .route("referrers", `/v2/${NAME}/referrers/:digest`, {
      GET: referrers.list,
      HEAD: referrers.list,
    })
    .route("admin", "/admin/gc", { POST: admin.gc })
    .route("ui", "/ui/:path(.*)", { GET: ui.get, HEAD: ui.get, POST: ui.post })
    .route("ui", "/ui", { GET: ui.root, HEAD: ui.root })
    .route("ui", "/", { GET: ui.root, HEAD: ui.root });
}
