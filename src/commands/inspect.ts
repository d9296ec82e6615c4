/**
 * `berth inspect [--raw|--config] REF`: skopeo inspect's JSON for an image of any transport
 * (Name, Digest, RepoTags, Created, DockerVersion, Labels, Architecture, Os, Layers, LayersData,
 * Env), its raw manifest, or its config.
 *
 * @module
 */
import { ClientError } from "../client/errors.ts";
import { VerifyingStream } from "../client/verify.ts";
import { hostPlatform, parsePlatform, selectPlatform } from "../copy/platform.ts";
import type { Descriptor } from "../oci/manifest.ts";
import { isIndexType } from "../oci/media_types.ts";
import { checkManifestDigest } from "../transports/docker.ts";
import { ClientPool } from "../transports/client_pool.ts";
import { openSource } from "../transports/mod.ts";
import type { ImageSource } from "../transports/types.ts";
import {
  parseFlags,
  reportFailure,
  SIDE_FLAGS,
  sideOptions,
  withInterrupt,
} from "./client_flags.ts";
import { UsageError } from "./usage_error.ts";

/** Help text of `inspect`. */
export const INSPECT_USAGE = `Usage: berth inspect [flags] REF

Print what skopeo inspect prints for an image (JSON): Name, Digest, RepoTags, Created,
DockerVersion, Labels, Architecture, Os, Layers, LayersData, Env. REF is any transport
(docker://, oci:, oci-archive:, docker-archive:). For an index, Digest is the index's and the
other fields come from the platform's image (--platform, default this machine's).

Flags:
  --raw               print the manifest's exact bytes
  --config            print the image's config
  --platform OS/ARCH[/VARIANT]
  --creds USER:PASS, --authfile FILE, --tls-verify=false, --cert-dir DIR

Exit codes: 0 done, 1 failure, 2 usage error.`;

const SPEC = {
  flags: { ...SIDE_FLAGS, raw: "boolean", config: "boolean", platform: "string" },
} as const;

interface ImageDoc {
  config?: Descriptor;
  layers?: Descriptor[];
  manifests?: Descriptor[];
}

/** Read a small blob fully, verified. */
async function readBlob(
  source: ImageSource,
  blob: Descriptor,
  signal: AbortSignal,
): Promise<Uint8Array> {
  const stream = (await source.getBlob(blob, { signal })).pipeThrough(
    new VerifyingStream(blob.digest, blob.size),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Build skopeo inspect's document for `source`. */
export async function inspectImage(
  source: ImageSource,
  options: { platform?: string; signal: AbortSignal; name: string; tags: string[] },
): Promise<{ raw: Uint8Array; config: Uint8Array; info: Record<string, unknown> }> {
  const { signal } = options;
  const root = await source.getManifest(undefined, { signal });
  let manifest = root;
  let doc = JSON.parse(new TextDecoder().decode(root.bytes)) as ImageDoc & {
    schemaVersion?: number;
  };
  if (doc.schemaVersion === 1) {
    throw new ClientError(
      "unsupported",
      `${source.name}: Docker schema 1 images are not supported`,
    );
  }
  if (isIndexType(root.mediaType) || Array.isArray(doc.manifests)) {
    const wanted = options.platform === undefined
      ? hostPlatform()
      : parsePlatform(options.platform);
    const entry = selectPlatform(doc.manifests ?? [], wanted) ?? doc.manifests?.[0];
    if (!entry) throw new ClientError("not-found", `${source.name}: the index lists no manifests`);
    manifest = await source.getManifest(entry.digest, { signal });
    checkManifestDigest(manifest.bytes, entry.digest);
    doc = JSON.parse(new TextDecoder().decode(manifest.bytes));
  }
  if (!doc.config) throw new ClientError("unsupported", `${source.name}: not an image (no config)`);
  const configBytes = await readBlob(source, doc.config, signal);
  let config: {
    created?: string;
    docker_version?: string;
    architecture?: string;
    os?: string;
    variant?: string;
    config?: { Labels?: Record<string, string> | null; Env?: string[] | null };
  } = {};
  try {
    config = JSON.parse(new TextDecoder().decode(configBytes));
  } catch { /* an artifact's config need not be JSON */ }
  const layers = doc.layers ?? [];
  const info: Record<string, unknown> = {
    Name: options.name,
    Digest: root.digest,
    RepoTags: options.tags,
    Created: config.created,
    DockerVersion: config.docker_version ?? "",
    Labels: config.config?.Labels ?? null,
    Architecture: config.architecture ?? "",
    ...(config.variant && { Variant: config.variant }),
    Os: config.os ?? "",
    Layers: layers.map((l) => l.digest),
    LayersData: layers.map((l) => ({
      MIMEType: l.mediaType,
      Digest: l.digest,
      Size: l.size,
      Annotations: l.annotations ?? null,
    })),
    Env: config.config?.Env ?? null,
  };
  return { raw: root.bytes, config: configBytes, info };
}

/** Run `inspect`. */
export async function inspectCommand(args: string[]): Promise<number> {
  const flags = parseFlags(args, SPEC);
  if (flags.positionals.length !== 1) throw new UsageError("inspect needs one REF");
  const reference = flags.positionals[0]!;
  const raw = flags.booleans.get("raw") ?? false;
  const wantConfig = flags.booleans.get("config") ?? false;
  if (raw && wantConfig) throw new UsageError("--raw and --config exclude each other");
  const pool = new ClientPool(sideOptions(flags, "src"));
  let source: ImageSource | undefined;
  try {
    source = await openSource(reference, pool);
    const opened = source;
    if (raw) {
      const manifest = await withInterrupt((signal) => opened.getManifest(undefined, { signal }));
      await Deno.stdout.write(manifest.bytes);
      return 0;
    }
    const location = opened.location;
    const name = location ? `${location.registry}/${location.repository}` : "";
    const tags = location && !wantConfig ? await opened.listTags?.().catch(() => []) ?? [] : [];
    const result = await withInterrupt((signal) =>
      inspectImage(opened, {
        signal,
        name,
        tags,
        ...(flags.strings.has("platform") && { platform: flags.strings.get("platform")! }),
      })
    );
    if (wantConfig) {
      await Deno.stdout.write(result.config);
      console.log();
    } else console.log(JSON.stringify(result.info, null, 4));
    return 0;
  } catch (error) {
    return reportFailure("inspect", error, reference);
  } finally {
    await source?.close().catch(() => {});
    await pool.close();
  }
}
