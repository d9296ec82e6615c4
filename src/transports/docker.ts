/**
 * `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`: a repository of a registry, through the
 * {@link RegistryClient}. As a destination it mounts blobs across repositories of the same
 * registry, and maintains the `sha256-<hex>` referrers tag when the registry has no referrers API.
 *
 * @module
 */
import { ClientError } from "../client/errors.ts";
import { fallbackTag, type RegistryClient } from "../client/registry_client.ts";
import { type ImageReference, parseImageReference } from "../client/reference.ts";
import { digestBytes } from "../oci/digest.ts";
import type { Descriptor } from "../oci/manifest.ts";
import { OCI_INDEX } from "../oci/media_types.ts";
import type { ClientPool } from "./client_pool.ts";
import type {
  BlobInfo,
  DestinationCapabilities,
  ImageDestination,
  ImageSource,
  Manifest,
  TransportCallOptions,
} from "./types.ts";

/** The docker transport's prefix. */
export const DOCKER_PREFIX = "docker://";

/** Open a registry repository as a source. */
export async function openDockerSource(reference: string, pool: ClientPool): Promise<DockerSource> {
  const ref = parseImageReference(reference);
  return new DockerSource(
    `${DOCKER_PREFIX}${reference}`,
    ref,
    await pool.client(ref.registry, ref.repository),
  );
}

/** Open a registry repository as a destination. */
export async function openDockerDestination(
  reference: string,
  pool: ClientPool,
): Promise<DockerDestination> {
  const ref = parseImageReference(reference);
  return new DockerDestination(
    `${DOCKER_PREFIX}${reference}`,
    ref,
    await pool.client(ref.registry, ref.repository),
  );
}

/** A registry repository read as an image source. */
export class DockerSource implements ImageSource {
  /** As written. */
  readonly name: string;
  /** Registry and repository, for cross-repository mounts. */
  readonly location: { registry: string; repository: string };
  #ref: ImageReference;
  #client: RegistryClient;

  /** A source over a parsed reference and its registry's client. */
  constructor(name: string, ref: ImageReference, client: RegistryClient) {
    this.name = name;
    this.#ref = ref;
    this.#client = client;
    this.location = { registry: ref.registry, repository: ref.repository };
  }

  /** The referenced manifest, or one by digest. */
  getManifest(digest?: string, options: TransportCallOptions = {}): Promise<Manifest> {
    const reference = digest ?? this.#ref.digest ?? this.#ref.tag ?? "latest";
    return this.#client.getManifest(this.#ref.repository, reference, options);
  }

  /** A blob stream (verified by the engine; resumed by the client). */
  getBlob(blob: BlobInfo, options: TransportCallOptions = {}): Promise<ReadableStream<Uint8Array>> {
    return this.#client.getBlob(this.#ref.repository, blob, { ...options, verify: false });
  }

  /** Referrers through the API, else the fallback tag. */
  referrers(digest: string, options: TransportCallOptions = {}): Promise<Descriptor[]> {
    return this.#client.referrers(this.#ref.repository, digest, options);
  }

  /** Every tag. */
  listTags(options: TransportCallOptions = {}): Promise<string[]> {
    return this.#client.listTags(this.#ref.repository, options);
  }

  /** Nothing to release (the pool owns the client). */
  async close(): Promise<void> {}
}

/** A registry repository written as an image destination. */
export class DockerDestination implements ImageDestination {
  /** As written. */
  readonly name: string;
  /** Indexes and referrers both; the registry checks every digest. */
  readonly capabilities: DestinationCapabilities = {
    indexes: true,
    referrers: true,
    verifiesDigests: true,
  };
  /** The reference's tag. */
  readonly tag: string | undefined;
  /** The reference's digest. */
  readonly digest: string | undefined;
  #ref: ImageReference;
  #client: RegistryClient;
  #unknown = false;

  /** A destination over a parsed reference and its registry's client. */
  constructor(name: string, ref: ImageReference, client: RegistryClient) {
    this.name = name;
    this.#ref = ref;
    this.#client = client;
    this.tag = ref.tag;
    this.digest = ref.digest;
  }

  /**
   * Ping the registry (scheme, auth challenge), so the first blob does not wait for it, and
   * learn whether the repository is new: then no blob is there to look for.
   */
  async prepare(options: TransportCallOptions = {}): Promise<void> {
    const sig = options.signal ? { signal: options.signal } : {};
    await this.#client.ping(sig);
    this.#unknown = await this.#client.hasRepository(this.#ref.repository, sig) === false;
  }

  /**
   * HEAD the blob; false (no request) in a repository that did not exist when the copy started
   * (a registry links blobs to a repository, so none is there but this copy's own, which the
   * engine does not push twice; an interrupted earlier push's blobs are pushed again); undefined
   * (no request) once the repository is known to mount from itself: `putBlob`'s `POST ?mount=`
   * then checks and starts the upload in one request.
   */
  hasBlob(blob: BlobInfo, options: TransportCallOptions = {}): Promise<boolean | undefined> {
    const repository = this.#ref.repository;
    if (this.#unknown) return Promise.resolve(false);
    if (this.#client.selfMounts(repository)) return Promise.resolve(undefined);
    return this.#client.hasBlob(repository, blob.digest, { ...options, push: true });
  }

  /** Mount from the source's repository when on this registry, else upload. */
  putBlob(
    blob: BlobInfo,
    open: () => Promise<ReadableStream<Uint8Array>>,
    options: TransportCallOptions & {
      mountFrom?: { registry: string; repository: string };
      checked?: boolean;
    } = {},
  ): Promise<"exists" | "mounted" | "uploaded"> {
    const mount = options.mountFrom?.registry === this.#ref.registry
      ? options.mountFrom.repository
      : undefined;
    return this.#client.pushBlob(this.#ref.repository, blob, open, {
      checked: options.checked ?? true,
      // A repository new at the start is never checked (hasBlob), so how it mounts is not needed.
      learn: !this.#unknown,
      ...(mount !== undefined && { mountFrom: mount }),
      ...(options.signal && { signal: options.signal }),
    });
  }

  /** PUT the manifest by each tag (by digest when none); keep the referrers tag if needed. */
  async putManifest(manifest: Manifest, tags: string[], options: TransportCallOptions = {}) {
    this.#unknown = false;
    const references = tags.length > 0 ? tags : [manifest.digest];
    let subjectAccepted = true;
    for (const reference of references) {
      const result = await this.#client.putManifest(
        this.#ref.repository,
        reference,
        manifest,
        options,
      );
      subjectAccepted &&= result.subjectAccepted;
    }
    const subject = subjectOf(manifest.bytes);
    if (subject && !subjectAccepted) await this.#addFallbackReferrer(subject, manifest, options);
  }

  async #addFallbackReferrer(subject: string, manifest: Manifest, options: TransportCallOptions) {
    const repository = this.#ref.repository;
    const current = await this.#client.fallbackReferrers(repository, subject, options);
    const manifests = (current?.descriptors ?? []).filter((d) => d.digest !== manifest.digest);
    manifests.push(referrerDescriptor(manifest));
    const index = { schemaVersion: 2, mediaType: OCI_INDEX, manifests };
    const bytes = new TextEncoder().encode(JSON.stringify(index));
    await this.#client.putManifest(repository, fallbackTag(subject), {
      bytes,
      mediaType: OCI_INDEX,
    }, options);
  }

  /** What the tag names now (HEAD), for incremental sync. */
  async currentDigest(
    tag: string,
    options: TransportCallOptions = {},
  ): Promise<string | undefined> {
    const head = await this.#client.headManifest(this.#ref.repository, tag, options);
    if (!head) return undefined;
    if (head.digest) return head.digest;
    const manifest = await this.#client.getManifest(this.#ref.repository, tag, options);
    return manifest.digest;
  }

  /** Registries make content visible as it is pushed (manifests last). */
  async commit(): Promise<void> {}

  /** Nothing unreferenced is visible: blobs without a manifest are invisible. */
  async abort(): Promise<void> {}
}

/** The `subject` digest of a manifest, if it has one. */
export function subjectOf(bytes: Uint8Array): string | undefined {
  try {
    const doc = JSON.parse(new TextDecoder().decode(bytes)) as { subject?: { digest?: unknown } };
    return typeof doc.subject?.digest === "string" ? doc.subject.digest : undefined;
  } catch {
    return undefined;
  }
}

/** The descriptor a referrers index lists for a manifest (artifactType, annotations). */
export function referrerDescriptor(manifest: Manifest): Descriptor {
  const doc = JSON.parse(new TextDecoder().decode(manifest.bytes)) as {
    artifactType?: string;
    config?: { mediaType?: string };
    annotations?: Record<string, string>;
  };
  const artifactType = doc.artifactType ?? doc.config?.mediaType;
  return {
    mediaType: manifest.mediaType,
    digest: manifest.digest,
    size: manifest.bytes.byteLength,
    ...(artifactType && { artifactType }),
    ...(doc.annotations && { annotations: doc.annotations }),
  };
}

/** Check a manifest's bytes against a digest (throws `digest-mismatch`). */
export function checkManifestDigest(bytes: Uint8Array, digest: string): void {
  const algorithm = digest.startsWith("sha512:") ? "sha512" : "sha256";
  const actual = digestBytes(bytes, algorithm).value;
  if (actual !== digest) {
    throw new ClientError(
      "digest-mismatch",
      `digest mismatch for manifest ${digest}: got ${actual}`,
    );
  }
}
