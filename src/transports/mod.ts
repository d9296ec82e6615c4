/**
 * The transports berth copies between, by prefix (`docker://`, `oci:`, `oci-archive:`,
 * `docker-archive:`), and opening a reference as a source or a destination.
 *
 * @module
 */
import { ClientError } from "../client/errors.ts";
import type { ClientPool } from "./client_pool.ts";
import { DOCKER_PREFIX, openDockerDestination, openDockerSource } from "./docker.ts";
import {
  openDockerArchiveDestination,
  openDockerArchiveSource,
  splitArchiveReference,
} from "./docker_archive.ts";
import { openOciArchiveDestination, openOciArchiveSource } from "./oci_archive.ts";
import { openOciDestination, openOciSource, splitPathAndTag } from "./oci_layout.ts";
import { DirSource, openDirDestination } from "./dir.ts";
import type { ImageDestination, ImageSource } from "./types.ts";

/** One transport: how to open its references. */
interface Transport {
  source(value: string, name: string, pool: ClientPool): Promise<ImageSource>;
  destination(value: string, name: string, pool: ClientPool): Promise<ImageDestination>;
}

const TRANSPORTS: Record<string, Transport> = {
  "docker://": {
    source: (value, _name, pool) => openDockerSource(value, pool),
    destination: (value, _name, pool) => openDockerDestination(value, pool),
  },
  "oci:": {
    source: (value, name) => {
      const { path, tag } = splitPathAndTag(value);
      return Promise.resolve(openOciSource(path, tag, name));
    },
    destination: (value, name) => {
      const { path, tag } = splitPathAndTag(value);
      return openOciDestination(path, tag, name);
    },
  },
  "oci-archive:": {
    source: (value, name) => {
      const { path, tag } = splitPathAndTag(value);
      return openOciArchiveSource(path, tag, name);
    },
    destination: (value, name) => {
      const { path, tag } = splitPathAndTag(value);
      return openOciArchiveDestination(path, tag, name);
    },
  },
  "dir:": {
    source: (value, name) => Promise.resolve(new DirSource(value, name)),
    destination: (value, name) => openDirDestination(value, name),
  },
  "docker-archive:": {
    source: (value, name) => {
      const { path, repoTag } = splitArchiveReference(value);
      return openDockerArchiveSource(path, repoTag, name);
    },
    destination: (value, name) => {
      const { path, repoTag } = splitArchiveReference(value);
      return openDockerArchiveDestination(path, repoTag, name);
    },
  },
};

/** The transport prefixes, for help texts. */
export const TRANSPORT_NAMES = Object.keys(TRANSPORTS);

/** Split `TRANSPORT:VALUE`; throws `invalid` for an unknown transport. */
export function splitTransport(reference: string): { prefix: string; value: string } {
  for (const prefix of Object.keys(TRANSPORTS)) {
    if (reference.startsWith(prefix)) return { prefix, value: reference.slice(prefix.length) };
  }
  throw new ClientError(
    "usage",
    `"${reference}": unknown transport (use ${TRANSPORT_NAMES.map((t) => `${t}...`).join(", ")})`,
  );
}

/** Open a reference as an image source. */
export function openSource(reference: string, pool: ClientPool): Promise<ImageSource> {
  const { prefix, value } = splitTransport(reference);
  if (value === "") throw new ClientError("usage", `"${reference}": empty reference`);
  return TRANSPORTS[prefix]!.source(value, reference, pool);
}

/** Open a reference as an image destination. */
export function openDestination(reference: string, pool: ClientPool): Promise<ImageDestination> {
  const { prefix, value } = splitTransport(reference);
  if (value === "") throw new ClientError("usage", `"${reference}": empty reference`);
  return TRANSPORTS[prefix]!.destination(value, reference, pool);
}

/** Whether the reference is a registry's. */
export function isRegistryReference(reference: string): boolean {
  return reference.startsWith(DOCKER_PREFIX);
}
