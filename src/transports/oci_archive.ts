/**
 * `oci-archive:FILE[:TAG]`: an OCI image layout in a tar file. Read by extracting it to a
 * temporary folder; written as a layout in a temporary folder next to FILE, archived and renamed
 * over FILE on commit (so FILE is either the old archive or the complete new one).
 *
 * @module
 */
import { dirname } from "node:path";
import { type OciLayoutDestination, OciLayoutSource, openOciDestination } from "./oci_layout.ts";
import { commitTar, extractTar, type TarSource } from "./tar.ts";
import type { ImageDestination, TransportCallOptions } from "./types.ts";
import { ClientError } from "../client/errors.ts";

/** Open an OCI archive as a source. */
export async function openOciArchiveSource(
  file: string,
  tag: string | undefined,
  name: string,
): Promise<OciLayoutSource> {
  const dir = await Deno.makeTempDir({ prefix: "berth-oci-archive-" });
  const cleanup = () => Deno.remove(dir, { recursive: true }).catch(() => {});
  try {
    await extractTar(file, dir);
  } catch (error) {
    await cleanup();
    if (error instanceof Deno.errors.NotFound) {
      throw new ClientError("not-found", `${name}: ${file} not found`);
    }
    throw error;
  }
  return new OciLayoutSource(dir, tag, name, cleanup);
}

/** Open an OCI archive as a destination (written on commit). */
export async function openOciArchiveDestination(
  file: string,
  tag: string | undefined,
  name: string,
): Promise<OciArchiveDestination> {
  const staging = await Deno.makeTempDir({
    dir: dirname(file) || ".",
    prefix: ".berth-oci-archive-",
  });
  return new OciArchiveDestination(file, staging, await openOciDestination(staging, tag, name));
}

/** A layout staged in a folder, archived into FILE on commit. */
export class OciArchiveDestination implements ImageDestination {
  #file: string;
  #staging: string;
  #layout: OciLayoutDestination;

  /** Wrap a staging layout. */
  constructor(file: string, staging: string, layout: OciLayoutDestination) {
    this.#file = file;
    this.#staging = staging;
    this.#layout = layout;
  }

  /** As written. */
  get name(): string {
    return this.#layout.name;
  }
  /** Indexes and referrers. */
  get capabilities() {
    return this.#layout.capabilities;
  }
  /** The tag. */
  get tag(): string | undefined {
    return this.#layout.tag;
  }

  /** See {@link OciLayoutDestination.hasBlob}. */
  hasBlob: OciLayoutDestination["hasBlob"] = (blob) => this.#layout.hasBlob(blob);
  /** See {@link OciLayoutDestination.putBlob}. */
  putBlob: OciLayoutDestination["putBlob"] = (blob, open) => this.#layout.putBlob(blob, open);
  /** See {@link OciLayoutDestination.putManifest}. */
  putManifest: OciLayoutDestination["putManifest"] = (m, tags, options) =>
    this.#layout.putManifest(m, tags, options);

  /** Write the layout's index, archive it and rename the archive over FILE. */
  async commit(options: TransportCallOptions = {}): Promise<void> {
    await this.#layout.commit();
    const sources: TarSource[] = [];
    const walk = async (dir: string, prefix: string) => {
      for await (const entry of Deno.readDir(dir)) {
        if (entry.name.startsWith(".tmp-")) continue;
        const path = `${dir}/${entry.name}`;
        if (entry.isDirectory) await walk(path, `${prefix}${entry.name}/`);
        else if (entry.isFile) sources.push({ name: `${prefix}${entry.name}`, data: { path } });
      }
    };
    await walk(this.#staging, "");
    sources.sort((a, b) => a.name.localeCompare(b.name));
    await commitTar(this.#file, this.#staging, sources, options.signal);
  }

  /** Remove the staging folder. */
  async abort(): Promise<void> {
    await Deno.remove(this.#staging, { recursive: true }).catch(() => {});
  }
}
