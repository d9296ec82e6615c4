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
import { Router } from "./router.ts";

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
  const base = () =>
    new Response("{}", { headers: { "Content-Type": "application/json; charset=utf-8" } });
  return new Router()
    .add("GET", "/v2/", base)
    .add("HEAD", "/v2/", base)
    .add("GET", `/v2/${NAME}/manifests/:reference`, manifests.get)
    .add("HEAD", `/v2/${NAME}/manifests/:reference`, manifests.get)
    .add("PUT", `/v2/${NAME}/manifests/:reference`, manifests.put)
    .add("DELETE", `/v2/${NAME}/manifests/:reference`, manifests.delete)
    .add("POST", `/v2/${NAME}/blobs/uploads/`, uploads.start)
    .add("GET", `/v2/${NAME}/blobs/uploads/:id`, uploads.status)
    .add("PATCH", `/v2/${NAME}/blobs/uploads/:id`, uploads.patch)
    .add("PUT", `/v2/${NAME}/blobs/uploads/:id`, uploads.put)
    .add("DELETE", `/v2/${NAME}/blobs/uploads/:id`, uploads.cancel)
    .add("GET", `/v2/${NAME}/blobs/:digest`, blobs.get)
    .add("HEAD", `/v2/${NAME}/blobs/:digest`, blobs.get)
    .add("DELETE", `/v2/${NAME}/blobs/:digest`, blobs.delete)
    .add("GET", "/v2/_catalog", catalog.list)
    .add("HEAD", "/v2/_catalog", catalog.list)
    .add("GET", `/v2/${NAME}/tags/list`, tags.list)
    .add("HEAD", `/v2/${NAME}/tags/list`, tags.list)
    .add("GET", `/v2/${NAME}/referrers/:digest`, referrers.list)
    .add("HEAD", `/v2/${NAME}/referrers/:digest`, referrers.list)
    .add("POST", "/admin/gc", admin.gc);
}
