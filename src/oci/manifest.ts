/**
 * Manifest parsing and validation: OCI image manifests and indexes, Docker schema 2 manifests and
 * manifest lists, artifacts. Pure logic, no storage.
 *
 * @module
 */
import { OciError } from "./errors.ts";
import { type Digest, tryParseDigest } from "./digest.ts";
import {
  DOCKER_FOREIGN_LAYER,
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  DOCKER_SCHEMA1,
  essence,
  isIndexType,
  MANIFEST_TYPES,
  OCI_INDEX,
  OCI_MANIFEST,
} from "./media_types.ts";

/** A content descriptor as it appears in a manifest. */
export interface Descriptor {
  /** Media type of the content. */
  mediaType: string;
  /** Digest of the content. */
  digest: string;
  /** Size in bytes. */
  size: number;
  /** Artifact type, when set. */
  artifactType?: string;
  /** Annotations, when set. */
  annotations?: Record<string, string>;
  /** Other fields are kept as they are. */
  [key: string]: unknown;
}

/** What berth needs to know of a manifest once it has been validated. */
export interface ParsedManifest {
  /** Its media type: the `mediaType` field, else what its bytes tell (an index lists manifests). */
  mediaType: string;
  /** Blobs it references that must be in the repository (config and layers). */
  blobs: Digest[];
  /** Manifests it references that must be in the repository (index children). */
  manifests: Digest[];
  /** The `subject`'s digest, when the manifest refers to another. */
  subject?: { digest: Digest };
  /** `artifactType`, else the config's media type (what the referrers API reports). */
  artifactType?: string;
  /** The manifest's annotations. */
  annotations?: Record<string, string>;
}

function invalid(message: string, detail?: unknown): OciError {
  return new OciError("manifest", message, detail);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function checkAnnotations(value: unknown, where: string): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value) || Object.values(value).some((v) => typeof v !== "string")) {
    throw invalid(`${where}: annotations must be a map of strings`);
  }
  return value as Record<string, string>;
}

/** Validate one descriptor; returns it with its parsed digest. */
export function parseDescriptor(value: unknown, where: string): [Descriptor, Digest] {
  if (!isObject(value)) throw invalid(`${where}: descriptor must be an object`);
  const { mediaType, digest, size } = value;
  if (typeof mediaType !== "string" || mediaType === "") {
    throw invalid(`${where}: descriptor needs a mediaType`);
  }
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
    throw invalid(`${where}: descriptor size must be a non-negative integer`);
  }
  const parsed = typeof digest === "string" ? tryParseDigest(digest) : undefined;
  if (!parsed) throw invalid(`${where}: descriptor digest is invalid`, { digest });
  checkAnnotations(value.annotations, where);
  if (value.artifactType !== undefined && typeof value.artifactType !== "string") {
    throw invalid(`${where}: artifactType must be a string`);
  }
  return [value as Descriptor, parsed];
}

/**
 * Parse and validate manifest bytes. `contentType` is the request's `Content-Type` (may be empty).
 * Throws `MANIFEST_INVALID` with a message that says what is wrong.
 */
export function parseManifest(bytes: Uint8Array, contentType = ""): ParsedManifest {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw invalid("manifest is not valid UTF-8 JSON");
  }
  if (!isObject(doc)) throw invalid("manifest must be a JSON object");
  const declared = essence(contentType);
  const field = doc.mediaType;
  if (field !== undefined && typeof field !== "string") throw invalid("mediaType must be a string");
  if (
    doc.schemaVersion === 1 || DOCKER_SCHEMA1.includes(declared) ||
    DOCKER_SCHEMA1.includes(field ?? "")
  ) {
    throw invalid(
      "Docker schema 1 manifests are not supported: push with schema 2 or OCI (e.g. docker push with a current client)",
    );
  }
  if (doc.schemaVersion !== 2) throw invalid("schemaVersion must be 2");
  if (field && declared && field !== declared && declared !== "application/json") {
    throw invalid(`mediaType "${field}" does not match Content-Type "${declared}"`);
  }
  // Without a mediaType field the bytes alone must tell the type (OCI, an index when it lists
  // manifests), so the Content-Type served later never depends on what a push declared.
  const inferred = "manifests" in doc ? OCI_INDEX : OCI_MANIFEST;
  if (!field && MANIFEST_TYPES.includes(declared) && declared !== inferred) {
    throw invalid(`a manifest without a mediaType field cannot be "${declared}"`);
  }
  const mediaType = field || inferred;
  if (!MANIFEST_TYPES.includes(mediaType)) {
    throw invalid(`unsupported manifest media type "${mediaType}"`);
  }
  const annotations = checkAnnotations(doc.annotations, "manifest");
  if (doc.artifactType !== undefined && typeof doc.artifactType !== "string") {
    throw invalid("artifactType must be a string");
  }
  const result: ParsedManifest = { mediaType, blobs: [], manifests: [] };
  if (annotations) result.annotations = annotations;
  if (typeof doc.artifactType === "string") result.artifactType = doc.artifactType;

  if (isIndexType(mediaType)) {
    if (!Array.isArray(doc.manifests)) throw invalid("an index needs a manifests array");
    doc.manifests.forEach((entry, i) => {
      const [, digest] = parseDescriptor(entry, `manifests[${i}]`);
      result.manifests.push(digest);
    });
    if (mediaType === DOCKER_MANIFEST_LIST && result.artifactType) {
      throw invalid("a Docker manifest list cannot carry artifactType");
    }
  } else {
    const [config, configDigest] = parseDescriptor(doc.config, "config");
    result.blobs.push(configDigest);
    if (!Array.isArray(doc.layers)) throw invalid("an image manifest needs a layers array");
    if (mediaType === DOCKER_MANIFEST && doc.layers.length === 0) {
      throw invalid("a Docker image manifest needs at least one layer");
    }
    doc.layers.forEach((entry, i) => {
      const [layer, digest] = parseDescriptor(entry, `layers[${i}]`);
      const foreign = layer.mediaType === DOCKER_FOREIGN_LAYER ||
        (Array.isArray(layer.urls) && layer.urls.length > 0);
      if (!foreign) result.blobs.push(digest);
    });
    result.artifactType ??= config.mediaType;
  }
  if (doc.subject !== undefined) {
    const [, digest] = parseDescriptor(doc.subject, "subject");
    result.subject = { digest };
  }
  return result;
}
