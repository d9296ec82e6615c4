/**
 * What the UI's pages show, read through the registry's services and store (never over HTTP):
 * a page of the repository list, a repository's tags, a manifest with its config and referrers.
 * Stored documents are user input: every field is read defensively and kept as plain data.
 *
 * @module
 */
import type { CatalogView } from "../auth/access_control.ts";
import { RegistryError } from "../errors.ts";
import { type Digest, tryParseDigest } from "../oci/digest.ts";
import type { Descriptor } from "../oci/manifest.ts";
import { isIndexType } from "../oci/media_types.ts";
import type { Registry } from "../services/registry.ts";
import type { StoredManifest } from "../services/manifests.ts";
import { groupReferrers, type ReferrerGroup } from "./artifacts.ts";
import { type Platform, toPlatform } from "./format.ts";

/** What the caller of a page may see and do. */
export interface Viewer {
  /** The signed-in user, `undefined` when anonymous. */
  user?: string;
  /** Whether the user signed in with the UI's form (and can sign out there). */
  session: boolean;
  /** Whether the caller may pull from a repository. */
  canPull(name: string): boolean;
  /** What the caller may see in the catalog. */
  catalog: CatalogView;
  /** Whether the caller may delete in a repository (and deletes are enabled). */
  canDelete(name: string): boolean;
}

/**
 * Most tags whose push times a row of the list reads (a `stat` each, an object HEAD on S3): a
 * page of the list costs at most 100 times this whatever the repositories hold.
 */
export const PUSH_TIMES_PER_ROW = 32;
/** Most repository names looked at to fill one page of a filtered list. */
export const SCAN_BUDGET = 2_000;
/** Largest image config read for the manifest page. */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;
const IMAGE_CONFIG_TYPES = [
  "application/vnd.oci.image.config.v1+json",
  "application/vnd.docker.container.image.v1+json",
];

/** One repository of the list. */
export interface RepositoryRow {
  /** Its name. */
  name: string;
  /** How many tags it has. */
  tagCount: number;
  /** When one of its tags was last pushed. */
  lastPushed?: Date;
  /** Whether it has more tags than the list reads push times of (no `lastPushed` then). */
  manyTags?: boolean;
}

/** One page of the repository list. */
export interface RepositoryList {
  /** The repositories of the page. */
  rows: RepositoryRow[];
  /** Where the next page starts (`last`), when there is more. */
  next?: string;
  /** Whether the page stopped at the scan budget before it was full (more may match). */
  partial: boolean;
}

/** Options of {@link loadRepositories}. */
export interface ListOptions {
  /** Keep only names containing this text. */
  filter: string;
  /** Start after this name. */
  last?: string;
  /** Most rows. */
  limit: number;
}

/**
 * A page of the repositories the viewer may pull, from the catalog service in the catalog's
 * order (its cost follows the page); a filter reads at most {@link SCAN_BUDGET} names per page
 * and says where it stopped.
 */
export async function loadRepositories(
  registry: Registry,
  viewer: Viewer,
  options: ListOptions,
): Promise<RepositoryList> {
  const filter = options.filter.toLowerCase();
  const page = await registry.catalog.list(
    options.limit,
    options.last,
    viewer.catalog,
    filter === "" ? {} : { contains: filter, scanLimit: SCAN_BUDGET },
  );
  const rows = await Promise.all(page.entries.map((name) => repositoryRow(registry, name)));
  if (page.scannedTo !== undefined) return { rows, next: page.scannedTo, partial: true };
  if (page.more) return { rows, next: page.entries[page.entries.length - 1]!, partial: false };
  return { rows, partial: false };
}

/**
 * A row of the list: its tag count, and when it has at most {@link PUSH_TIMES_PER_ROW} tags,
 * the latest of their push times (one `stat` each; a repository with more is marked, and its
 * page sorts its tags by push time).
 */
async function repositoryRow(registry: Registry, name: string): Promise<RepositoryRow> {
  const tags = (await registry.store.listTags(name)) ?? [];
  const row: RepositoryRow = { name, tagCount: tags.length };
  if (tags.length > PUSH_TIMES_PER_ROW) return { ...row, manyTags: true };
  const times = await Promise.all(tags.map((tag) => registry.store.tagModifiedAt(name, tag)));
  const latest = latestOf(times);
  if (latest) row.lastPushed = latest;
  return row;
}

function latestOf(times: (Date | undefined)[]): Date | undefined {
  let latest: Date | undefined;
  for (const time of times) if (time && (!latest || time > latest)) latest = time;
  return latest;
}

/** How the tag table is sorted. */
export type TagSort = "name" | "pushed" | "size";

/** One platform of an index. */
export interface PlatformRow {
  /** The platform the index names. */
  platform?: Platform;
  /** The child manifest. */
  digest: string;
  /** Its media type. */
  mediaType: string;
  /** Its image size (config and layers), when the child is stored. */
  size?: number;
  /** An entry that is an attestation or other artifact, not a runnable image. */
  artifact: boolean;
}

/** One tag of a repository. */
export interface TagRow {
  /** The tag. */
  tag: string;
  /** The manifest it points at. */
  digest: string;
  /** That manifest's media type (absent when the manifest cannot be read). */
  mediaType?: string;
  /** Image size: config and layers; for an index, the sum over its platforms. */
  size?: number;
  /** For an index: its platforms. */
  platforms?: PlatformRow[];
  /** The manifest's artifactType, when it is an artifact. */
  artifactType?: string;
  /** When the tag was last pushed. */
  pushed?: Date;
}

/** Options of {@link loadTags}. */
export interface TagOptions {
  /** Sort key. */
  sort: TagSort;
  /** Descending order. */
  descending: boolean;
  /** Page number, from 1. */
  page: number;
  /** Rows per page. */
  perPage: number;
}

/** A page of a repository's tags. */
export interface TagList {
  /** The rows of the page. */
  rows: TagRow[];
  /** Number of tags. */
  total: number;
  /** Page number shown (from 1). */
  page: number;
  /** Number of pages. */
  pages: number;
}

/** A page of a repository's tags; `NAME_UNKNOWN` when the repository does not exist. */
export async function loadTags(
  registry: Registry,
  name: string,
  options: TagOptions,
): Promise<TagList> {
  const tags = await registry.store.listTags(name);
  if (!tags) throw new RegistryError("NAME_UNKNOWN", { name });
  tags.sort(compareText);
  const pages = Math.max(1, Math.ceil(tags.length / options.perPage));
  const page = Math.min(Math.max(1, options.page), pages);
  const sign = options.descending ? -1 : 1;
  let ordered: string[];
  const known = new Map<string, TagRow>();
  if (options.sort === "name") {
    ordered = options.descending ? [...tags].reverse() : tags;
  } else {
    // Sorting by time or size needs every tag's value; names break ties.
    const keyed: { tag: string; key: number }[] = [];
    if (options.sort === "size") {
      for (const row of await Promise.all(tags.map((tag) => tagRow(registry, name, tag)))) {
        if (!row) continue;
        known.set(row.tag, row);
        keyed.push({ tag: row.tag, key: row.size ?? -1 });
      }
    } else {
      const times = await Promise.all(tags.map((tag) => registry.store.tagModifiedAt(name, tag)));
      tags.forEach((tag, i) => keyed.push({ tag, key: times[i]?.getTime() ?? 0 }));
    }
    keyed.sort((a, b) => sign * (a.key - b.key) || compareText(a.tag, b.tag));
    ordered = keyed.map((entry) => entry.tag);
  }
  const slice = ordered.slice((page - 1) * options.perPage, page * options.perPage);
  const rows = await Promise.all(
    slice.map((tag) => known.get(tag) ?? tagRow(registry, name, tag)),
  );
  return {
    rows: rows.filter((row): row is TagRow => row !== undefined),
    total: tags.length,
    page,
    pages,
  };
}

async function tagRow(registry: Registry, name: string, tag: string): Promise<TagRow | undefined> {
  const [digest, pushed] = await Promise.all([
    registry.store.getTag(name, tag),
    registry.store.tagModifiedAt(name, tag),
  ]);
  // A tag deleted while the page is built is left out.
  if (!digest) return undefined;
  const row: TagRow = { tag, digest: digest.value };
  if (pushed) row.pushed = pushed;
  const manifest = await registry.manifests.load(digest);
  if (!manifest) return row;
  row.mediaType = manifest.mediaType;
  if (manifest.parsed.artifactType && !isImageConfigType(manifest.parsed.artifactType)) {
    row.artifactType = manifest.parsed.artifactType;
  }
  const doc = documentOf(manifest);
  if (isIndexType(manifest.mediaType)) {
    row.platforms = await platformsOf(registry, doc);
    const sizes = row.platforms.filter((p) => !p.artifact).map((p) => p.size);
    if (sizes.every((s) => s !== undefined)) row.size = sizes.reduce((a, b) => a + b, 0);
  } else {
    const size = imageSize(doc);
    if (size !== undefined) row.size = size;
  }
  return row;
}

/** The platforms of an index, with the size of each child the registry holds. */
async function platformsOf(
  registry: Registry,
  doc: Record<string, unknown>,
): Promise<PlatformRow[]> {
  return await Promise.all(
    descriptorsOf(doc.manifests).map(async ([descriptor, digest]) => {
      const platform = toPlatform(descriptor.platform);
      const annotations = annotationsOf(descriptor.annotations);
      const row: PlatformRow = {
        digest: descriptor.digest,
        mediaType: descriptor.mediaType,
        // BuildKit stores attestations as index entries of platform unknown/unknown.
        artifact: annotations.some(([key]) => key === "vnd.docker.reference.type") ||
          (platform?.os === "unknown" && platform.architecture === "unknown"),
      };
      if (platform) row.platform = platform;
      const child = await registry.manifests.load(digest);
      if (child && !isIndexType(child.mediaType)) {
        const size = imageSize(documentOf(child));
        if (size !== undefined) row.size = size;
      }
      return row;
    }),
  );
}

/** Config and layer sizes added up, from an image manifest's descriptors. */
export function imageSize(doc: Record<string, unknown>): number | undefined {
  const config = descriptorsOf([doc.config])[0];
  if (!config) return undefined;
  return descriptorsOf(doc.layers).reduce((sum, [d]) => sum + d.size, config[0].size);
}

/** The image config fields the manifest page shows. */
export interface ImageConfig {
  /** When the image was built. */
  created?: string;
  /** Operating system. */
  os?: string;
  /** CPU architecture. */
  architecture?: string;
  /** CPU variant. */
  variant?: string;
  /** Entrypoint. */
  entrypoint?: string[];
  /** Default command. */
  cmd?: string[];
  /** Working directory. */
  workingDir?: string;
  /** User the process runs as. */
  user?: string;
  /** Environment (`KEY=value`). */
  env: string[];
  /** Exposed ports. */
  exposedPorts: string[];
  /** Labels. */
  labels: [string, string][];
  /** Build history. */
  history: HistoryEntry[];
}

/** One step of an image's history. */
export interface HistoryEntry {
  /** When. */
  created?: string;
  /** The command that made it. */
  createdBy?: string;
  /** A comment. */
  comment?: string;
  /** Whether it made no layer. */
  emptyLayer: boolean;
}

/** A manifest as the manifest page shows it. */
export interface ManifestDetail {
  /** The repository. */
  name: string;
  /** The reference it was opened by (tag or digest). */
  reference: string;
  /** Its digest. */
  digest: string;
  /** Its media type. */
  mediaType: string;
  /** Size of the manifest itself. */
  manifestSize: number;
  /** Image (config and layers), index, or artifact (an artifactType or a non-image config). */
  kind: "image" | "index" | "artifact";
  /** Its artifactType (or the config's media type for an artifact). */
  artifactType?: string;
  /** Config descriptor. */
  config?: Descriptor;
  /** The image config, when it is one and readable. */
  image?: ImageConfig;
  /** Layers (or an artifact's blobs). */
  layers: Descriptor[];
  /** Config and layers added up. */
  totalSize?: number;
  /** The manifest's annotations. */
  annotations: [string, string][];
  /** The manifest it refers to, when any. */
  subject?: string;
  /** For an index: its platforms. */
  platforms: PlatformRow[];
  /** Manifests whose subject this one is, grouped by artifactType. */
  referrers: ReferrerGroup[];
  /** Tags pointing at this manifest. */
  tags: string[];
}

/** A manifest of `name` by tag or digest, with what the page shows about it. */
export async function loadManifest(
  registry: Registry,
  name: string,
  reference: string,
): Promise<ManifestDetail> {
  const manifest = await registry.manifests.get(name, reference);
  const doc = documentOf(manifest);
  const digest = manifest.digest;
  const index = isIndexType(manifest.mediaType);
  const [referrers, tags] = await Promise.all([
    registry.referrers.list(name, digest),
    tagsOf(registry, name, digest),
  ]);
  const detail: ManifestDetail = {
    name,
    reference,
    digest: digest.value,
    mediaType: manifest.mediaType,
    manifestSize: manifest.bytes.byteLength,
    kind: index ? "index" : "image",
    layers: descriptorsOf(doc.layers).map(([d]) => d),
    annotations: annotationsOf(doc.annotations),
    platforms: index ? await platformsOf(registry, doc) : [],
    referrers: groupReferrers(referrers.descriptors),
    tags,
  };
  const subject = descriptorsOf([doc.subject])[0];
  if (subject) detail.subject = subject[0].digest;
  const artifactType = manifest.parsed.artifactType;
  if (!index) {
    const config = descriptorsOf([doc.config])[0];
    if (config) {
      detail.config = config[0];
      const size = imageSize(doc);
      if (size !== undefined) detail.totalSize = size;
      if (isImageConfigType(config[0].mediaType)) {
        const image = await readImageConfig(registry, config[1]);
        if (image) detail.image = image;
      }
    }
    if (artifactType && !isImageConfigType(artifactType)) {
      detail.kind = "artifact";
      detail.artifactType = artifactType;
    }
  } else if (artifactType) detail.artifactType = artifactType;
  return detail;
}

/** Tags of `name` that point at `digest`, sorted. */
async function tagsOf(registry: Registry, name: string, digest: Digest): Promise<string[]> {
  const tags = (await registry.store.listTags(name)) ?? [];
  const targets = await Promise.all(tags.map((tag) => registry.store.getTag(name, tag)));
  return tags.filter((_, i) => targets[i]?.value === digest.value).sort(compareText);
}

async function readImageConfig(
  registry: Registry,
  digest: Digest,
): Promise<ImageConfig | undefined> {
  const size = await registry.store.statBlob(digest);
  if (size === undefined || size > MAX_CONFIG_BYTES) return undefined;
  const bytes = await registry.store.readBlob(digest);
  if (!bytes) return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return undefined;
  }
  return isObject(doc) ? imageConfigOf(doc) : undefined;
}

/** The fields the page shows, read defensively out of an image config document. */
export function imageConfigOf(doc: Record<string, unknown>): ImageConfig {
  const inner = isObject(doc.config) ? doc.config : {};
  const image: ImageConfig = {
    env: stringsOf(inner.Env),
    exposedPorts: isObject(inner.ExposedPorts) ? Object.keys(inner.ExposedPorts).sort() : [],
    labels: annotationsOf(inner.Labels),
    history: Array.isArray(doc.history)
      ? doc.history.filter(isObject).map((step) => {
        const entry: HistoryEntry = { emptyLayer: step.empty_layer === true };
        if (typeof step.created === "string") entry.created = step.created;
        if (typeof step.created_by === "string") entry.createdBy = step.created_by;
        if (typeof step.comment === "string") entry.comment = step.comment;
        return entry;
      })
      : [],
  };
  for (const key of ["created", "os", "architecture", "variant"] as const) {
    const value = doc[key];
    if (typeof value === "string" && value !== "") image[key] = value;
  }
  if (Array.isArray(inner.Entrypoint)) image.entrypoint = stringsOf(inner.Entrypoint);
  if (Array.isArray(inner.Cmd)) image.cmd = stringsOf(inner.Cmd);
  if (typeof inner.WorkingDir === "string" && inner.WorkingDir !== "") {
    image.workingDir = inner.WorkingDir;
  }
  if (typeof inner.User === "string" && inner.User !== "") image.user = inner.User;
  return image;
}

/** The JSON document of a stored manifest (validated when it was pushed). */
function documentOf(manifest: StoredManifest): Record<string, unknown> {
  try {
    const doc: unknown = JSON.parse(new TextDecoder().decode(manifest.bytes));
    return isObject(doc) ? doc : {};
  } catch {
    return {};
  }
}

/** The well-formed descriptors of a list (others are skipped), each with its parsed digest. */
export function descriptorsOf(value: unknown): [Descriptor, Digest][] {
  if (!Array.isArray(value)) return [];
  const result: [Descriptor, Digest][] = [];
  for (const entry of value) {
    if (!isObject(entry)) continue;
    const { mediaType, digest, size } = entry;
    if (typeof mediaType !== "string" || typeof digest !== "string") continue;
    if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) continue;
    const parsed = tryParseDigest(digest);
    if (parsed) result.push([entry as Descriptor, parsed]);
  }
  return result;
}

/** String pairs of a map (annotations, labels), sorted by key; other values are skipped. */
export function annotationsOf(value: unknown): [string, string][] {
  if (!isObject(value)) return [];
  return Object.entries(value)
    .filter((entry): entry is [string, string] => typeof entry[1] === "string")
    .sort((a, b) => compareText(a[0], b[0]));
}

function stringsOf(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
}

function isImageConfigType(mediaType: string): boolean {
  return IMAGE_CONFIG_TYPES.includes(mediaType);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
