/**
 * Docker image references (`HOST[:PORT]/REPO[:TAG|@DIGEST]`), parsed the way docker and skopeo
 * read them: a first component with a `.` or `:` (or `localhost`) names the registry, otherwise
 * Docker Hub (`docker.io`, with `library/` for one-component names).
 *
 * @module
 */
import { tryParseDigest } from "../oci/digest.ts";
import { ClientError } from "./errors.ts";

/** Docker Hub's name in references and auth files. */
export const DOCKER_HUB = "docker.io";
/** The host Docker Hub's API answers on. */
export const DOCKER_HUB_API = "registry-1.docker.io";

const REPOSITORY =
  /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

/** A parsed image reference. */
export interface ImageReference {
  /** Registry as written (`docker.io` for Docker Hub), `host[:port]`. */
  registry: string;
  /** Repository path, e.g. `library/alpine`. */
  repository: string;
  /** Tag, when given. */
  tag?: string;
  /** Digest, when given (`@sha256:...`). */
  digest?: string;
}

/** Whether `tag` is a valid tag. */
export function isValidTag(tag: string): boolean {
  return TAG.test(tag);
}

/** Whether `name` is a valid repository name. */
export function isValidRepository(name: string): boolean {
  return name.length <= 255 && REPOSITORY.test(name);
}

/** Parse `HOST[:PORT]/REPO[:TAG|@DIGEST]` (no `docker://` prefix); throws `invalid`. */
export function parseImageReference(input: string): ImageReference {
  const bad = (why: string) => new ClientError("usage", `invalid reference "${input}": ${why}`);
  let rest = input.replace(/^\/\//, "");
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!tryParseDigest(digest)) throw bad(`invalid digest ${digest}`);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!isValidTag(tag)) throw bad(`invalid tag ${tag}`);
  }
  const { registry, repository } = splitRepository(rest, bad);
  return {
    registry,
    repository,
    ...(tag !== undefined && { tag }),
    ...(digest !== undefined && { digest }),
  };
}

/** Parse `HOST[:PORT]/REPO` or `HOST[:PORT]` (a whole registry, repository empty). */
export function parseRepositoryReference(input: string): { registry: string; repository: string } {
  const bad = (why: string) => new ClientError("usage", `invalid reference "${input}": ${why}`);
  const rest = input.replace(/^\/\//, "").replace(/\/+$/, "");
  if (!rest.includes("/") && isRegistryName(rest)) return { registry: rest, repository: "" };
  return splitRepository(rest, bad);
}

function isRegistryName(component: string): boolean {
  return component.includes(".") || component.includes(":") || component === "localhost";
}

function splitRepository(
  rest: string,
  bad: (why: string) => ClientError,
): { registry: string; repository: string } {
  const slash = rest.indexOf("/");
  let registry = DOCKER_HUB;
  let repository = rest;
  if (slash > 0 && isRegistryName(rest.slice(0, slash))) {
    registry = rest.slice(0, slash);
    repository = rest.slice(slash + 1);
  }
  if (registry === "index.docker.io") registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && !repository.includes("/")) repository = `library/${repository}`;
  if (!isValidRepository(repository)) throw bad(`invalid repository name "${repository}"`);
  return { registry, repository };
}

/** The host to send API requests to for a registry name (`docker.io` → `registry-1.docker.io`). */
export function apiHost(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_API : registry;
}

/** Format a reference back to `registry/repository[:tag][@digest]`. */
export function formatReference(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag === undefined ? "" : `:${ref.tag}`}${
    ref.digest === undefined ? "" : `@${ref.digest}`
  }`;
}
