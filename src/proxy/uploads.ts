/**
 * Uploads with mirrored repositories refused: a mirror is filled from its upstream only.
 *
 * @module
 */
import type { Digest } from "../oci/digest.ts";
import type { BlobGuard } from "../services/blob_guard.ts";
import { type Chunk, UploadService } from "../services/uploads.ts";
import type { Store } from "../storage/store.ts";
import { refuseWrites } from "./manifests.ts";
import type { Mirrors } from "./mirrors.ts";

/** Uploads that refuse mirrored repositories with `UNSUPPORTED`. */
export class MirroredUploads extends UploadService {
  readonly #mirrors: Mirrors;

  /** Uploads over `store`, refusing the repositories of `mirrors`. */
  constructor(store: Store, guard: BlobGuard | undefined, mirrors: Mirrors) {
    super(store, guard);
    this.#mirrors = mirrors;
  }

  override async start(name: string): Promise<string> {
    refuseWrites(this.#mirrors, name);
    return await super.start(name);
  }

  override async monolithic(name: string, digest: Digest, chunk: Chunk): Promise<void> {
    refuseWrites(this.#mirrors, name);
    return await super.monolithic(name, digest, chunk);
  }

  override async mount(name: string, digest: Digest, from?: string): Promise<boolean> {
    refuseWrites(this.#mirrors, name);
    return await super.mount(name, digest, from);
  }
}
