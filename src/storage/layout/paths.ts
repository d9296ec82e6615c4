/**
 * The storage tree, the same as distribution's (`registry/storage/paths.go`), so a registry:2
 * data directory or bucket is served as it is. Paths are driver paths (`/docker/...`); the driver
 * maps them under its root (a folder, a bucket prefix):
 *
 * ```
 * /docker/registry/v2/
 *   blobs/<alg>/<first two hex>/<hex>/data               global content-addressed blobs
 *   repositories/<name>/
 *     _layers/<alg>/<hex>/link                           blobs linked into the repository
 *     _manifests/revisions/<alg>/<hex>/link              manifests of the repository
 *     _manifests/tags/<tag>/current/link                 what the tag points at now
 *     _manifests/tags/<tag>/index/<alg>/<hex>/link       every digest the tag has pointed at
 *     _uploads/<id>/data                                 bytes of an upload session
 *     _uploads/<id>/startedat                            RFC 3339 time the session opened
 *     _referrers/<alg>/<subject hex>/<alg>/<hex>/link    berth: manifests whose subject is that
 *   _berth/tag-changes                                   berth: one byte per tag change (TagEpoch)
 *   _berth/mirror-uses                                   berth: when cached manifests were last served
 *   _tmp/                                                berth: temporary files (fs), probes
 * ```
 *
 * distribution ignores the two berth additions (it skips `_`-folders of a repository and only
 * reads `blobs/` and `repositories/`), so the tree stays servable by `docker-registry`.
 *
 * Every path is built from validated names, tags, digests and ids, and checked to stay under root.
 *
 * @module
 */
import type { Digest } from "../../oci/digest.ts";
import { isUploadId, type LinkKind } from "../store.ts";

/** The base of the tree. */
const BASE = "/docker/registry/v2";

/** Builds the driver paths of the tree. */
export class StorePaths {
  /** `/docker/registry/v2`. */
  readonly base = BASE;
  /** Where temporary files are written before being renamed into place. */
  readonly tmp = `${BASE}/_tmp`;

  /** The blobs folder. */
  get blobs(): string {
    return `${this.base}/blobs`;
  }

  /** The repositories folder. */
  get repositories(): string {
    return `${this.base}/repositories`;
  }

  /** Folder of one blob. */
  blobDir(d: Digest): string {
    return `${this.base}/blobs/${d.algorithm}/${d.hex.slice(0, 2)}/${d.hex}`;
  }

  /** Data file of one blob. */
  blobData(d: Digest): string {
    return `${this.blobDir(d)}/data`;
  }

  /** Folder of a repository. */
  repo(name: string): string {
    return this.#safe(`${this.base}/repositories/${name}`, name);
  }

  /** Folder holding a repository's links of one kind for one algorithm. */
  linkRoot(name: string, kind: LinkKind): string {
    return kind === "layer"
      ? `${this.repo(name)}/_layers`
      : `${this.repo(name)}/_manifests/revisions`;
  }

  /** Link file of a digest in a repository. */
  link(name: string, kind: LinkKind, d: Digest): string {
    return `${this.linkRoot(name, kind)}/${d.algorithm}/${d.hex}/link`;
  }

  /** Folder of all tags. */
  tags(name: string): string {
    return `${this.repo(name)}/_manifests/tags`;
  }

  /** Folder of one tag. */
  tag(name: string, tag: string): string {
    return this.#safe(`${this.tags(name)}/${tag}`, tag);
  }

  /** The tag's current link. */
  tagCurrent(name: string, tag: string): string {
    return `${this.tag(name, tag)}/current/link`;
  }

  /** The tag's index entry for a digest. */
  tagIndex(name: string, tag: string, d: Digest): string {
    return `${this.tag(name, tag)}/index/${d.algorithm}/${d.hex}/link`;
  }

  /** Folder of the referrers of one subject. */
  referrers(name: string, subject: Digest): string {
    return `${this.repo(name)}/_referrers/${subject.algorithm}/${subject.hex}`;
  }

  /** Link file of one referrer of a subject. */
  referrer(name: string, subject: Digest, referrer: Digest): string {
    return `${this.referrers(name, subject)}/${referrer.algorithm}/${referrer.hex}/link`;
  }

  /** The file whose length is the tag epoch. */
  get tagChanges(): string {
    return `${this.base}/_berth/tag-changes`;
  }

  /** When the pull-through cache last served each cached manifest (JSON; for `ttl`). */
  get mirrorUses(): string {
    return `${this.base}/_berth/mirror-uses`;
  }

  /** Folder of upload sessions. */
  uploads(name: string): string {
    return `${this.repo(name)}/_uploads`;
  }

  /** Folder of one upload session. */
  upload(name: string, id: string): string {
    if (!isUploadId(id)) throw new Error(`invalid upload id ${JSON.stringify(id)}`);
    return `${this.uploads(name)}/${id}`;
  }

  /** Data file of an upload session. */
  uploadData(name: string, id: string): string {
    return `${this.upload(name, id)}/data`;
  }

  /** Start-time file of an upload session. */
  uploadStartedAt(name: string, id: string): string {
    return `${this.upload(name, id)}/startedat`;
  }

  /** Whether `path` is a tag's current link (kept in memory by drivers that can check it). */
  isTagCurrent(path: string): boolean {
    return path.endsWith("/current/link") && path.includes("/_manifests/tags/");
  }

  /** Whether `path` is a repository's tags folder (its listing may be kept in memory). */
  isTagsFolder(path: string): boolean {
    return path.endsWith("/_manifests/tags") && path.startsWith(`${BASE}/repositories/`);
  }

  #safe(path: string, part: string): string {
    if (part === "" || part.split("/").some((c) => c === "" || c === "." || c === "..")) {
      throw new Error(`unsafe path component ${JSON.stringify(part)}`);
    }
    return path;
  }
}
