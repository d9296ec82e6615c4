/**
 * `berth sync SRC DST`: every tag (matching `--tags`) of a repository, or with `docker://HOST`
 * of every repository in the registry's catalog, into a registry, an OCI layout or archive, or one
 * docker archive holding every image with its tags. Incremental where the destination keeps
 * manifest digests: a tag whose digest already matches is reported up to date and skipped.
 *
 * @module
 */
import { ClientError, errorMessage } from "../client/errors.ts";
import { parseRepositoryReference } from "../client/reference.ts";
import { copyImage } from "../copy/copy.ts";
import { parsePlatform } from "../copy/platform.ts";
import { ClientPool } from "../transports/client_pool.ts";
import { openDestination, openSource, splitTransport } from "../transports/mod.ts";
import { dirname } from "node:path";
import { exists } from "../transports/files.ts";
import {
  DockerArchiveDestination,
  DockerArchiveWriter,
  splitArchiveReference,
} from "../transports/docker_archive.ts";
import { OciArchiveDestination } from "../transports/oci_archive.ts";
import type { ImageDestination } from "../transports/types.ts";
import { openOciDestination, splitPathAndTag } from "../transports/oci_layout.ts";
import { extractTar } from "../transports/tar.ts";
import {
  parseFlags,
  positiveInt,
  reportFailure,
  SIDE_FLAGS,
  SIDE_FLAGS_USAGE,
  sideOptions,
  withInterrupt,
} from "./client_flags.ts";
import { progressFor } from "./copy.ts";
import { UsageError } from "./usage_error.ts";

/** Help text of `sync`. */
export const SYNC_USAGE = `Usage: berth sync [flags] SRC DST

Copy every tag of a repository, or of every repository of a registry, keeping digests.
  SRC  docker://HOST/REPO     every tag of REPO
       docker://HOST          every repository in the catalog
       oci:DIR                every tag of a layout
  DST  docker://HOST[/PATH]   a registry: REPO goes to PATH (a repository SRC) or PATH/REPO
       oci:DIR                a layout (repository SRC only)
       oci-archive:FILE       an OCI archive (repository SRC only; rewritten at the end)
       docker-archive:FILE    one docker archive (docker save's format) with every image,
                              tagged HOST/REPO:TAG (SRC's names); written whole at the end
Tags whose digest already matches at DST are skipped and reported as up to date (not for a
docker archive: it keeps no manifest digests, so it is always written anew).

Flags:
  --tags REGEX        only tags matching REGEX (whole tag)
  --dry-run           print what would be copied, copy nothing
  --platform OS/ARCH[/VARIANT], -r/--referrers, --jobs N   as for copy
  -q, --quiet         print nothing but errors
  --json              print a JSON summary on stdout
${SIDE_FLAGS_USAGE}

Exit codes: 0 all tags in sync, 1 at least one failed (each failure on one line), 2 usage error.`;

const SPEC = {
  flags: {
    ...SIDE_FLAGS,
    tags: "string",
    "dry-run": "boolean",
    platform: "string",
    referrers: "boolean",
    jobs: "string",
    all: "boolean",
    quiet: "boolean",
    json: "boolean",
  },
  aliases: { r: "referrers", q: "quiet", a: "all" },
} as const;

/** One tag to bring over. */
interface Item {
  src: string;
  dst: string;
  label: string;
  tag: string;
  /** `REPO:TAG` of the image in a docker archive (the source's name). */
  repoTag: string;
}

/** What happened to one tag. */
interface Outcome {
  source: string;
  destination: string;
  status: "copied" | "up-to-date" | "would-copy" | "failed";
  digest?: string;
  error?: string;
}

/** Run `sync`. */
export async function syncCommand(args: string[]): Promise<number> {
  const flags = parseFlags(args, SPEC);
  if (flags.positionals.length !== 2) throw new UsageError("sync needs SRC and DST");
  const [src, dst] = flags.positionals as [string, string];
  const quiet = flags.booleans.get("quiet") ?? false;
  const json = flags.booleans.get("json") ?? false;
  const dryRun = flags.booleans.get("dry-run") ?? false;
  const jobs = positiveInt(flags, "jobs", 6);
  let filter: RegExp | undefined;
  const tagsFlag = flags.strings.get("tags");
  if (tagsFlag !== undefined) {
    try {
      filter = new RegExp(`^(?:${tagsFlag})$`);
    } catch {
      throw new UsageError(`--tags: invalid regular expression ${tagsFlag}`);
    }
  }
  const srcPool = new ClientPool(sideOptions(flags, "src"));
  const destPool = new ClientPool(sideOptions(flags, "dest"));
  const outcomes: Outcome[] = [];
  let staging: string | undefined;
  let archive: string | undefined;
  let dockerArchive: DockerArchiveWriter | undefined;
  const say = (line: string) => {
    if (!quiet && !json) console.log(line);
  };
  try {
    const platformFlag = flags.strings.get("platform");
    const platform = platformFlag === undefined ? undefined : parsePlatform(platformFlag);
    // An archive is synced as a layout (seeded from the archive, for incremental runs) and
    // archived again at the end.
    let target = dst;
    if (dst.startsWith("oci-archive:")) {
      const { path, tag } = splitPathAndTag(dst.slice("oci-archive:".length));
      if (tag !== undefined) throw new UsageError("sync takes an archive without a tag as DST");
      staging = await Deno.makeTempDir({ dir: dirname(path) || ".", prefix: ".berth-sync-" });
      archive = path;
      if (await exists(path)) await extractTar(path, staging);
      target = `oci:${staging}`;
    } else if (dst.startsWith("docker-archive:")) {
      const { path, repoTag } = splitArchiveReference(dst.slice("docker-archive:".length));
      if (repoTag !== undefined) {
        throw new UsageError("sync takes a docker archive without REPO:TAG as DST");
      }
      if (!dryRun) dockerArchive = await DockerArchiveWriter.open(path);
    }
    const items = (await plan(src, target, srcPool, filter)).map((item) => ({
      ...item,
      shown: item.dst.replace(target, dst),
    }));
    await withInterrupt(async (signal) => {
      for (const item of items) {
        if (signal.aborted) throw signal.reason;
        const outcome: Outcome = { source: item.src, destination: item.shown, status: "failed" };
        outcomes.push(outcome);
        try {
          const source = await openSource(item.src, srcPool);
          try {
            const destination: ImageDestination = dockerArchive
              ? new DockerArchiveDestination(dockerArchive, item.repoTag, item.shown, {
                writeOnCommit: false,
              })
              : await openDestination(item.dst, destPool);
            const wanted = platform
              ? undefined
              : (await source.getManifest(undefined, { signal })).digest;
            const current = wanted === undefined
              ? undefined
              : await destination.currentDigest?.(item.tag, { signal });
            if (wanted !== undefined && current === wanted) {
              await destination.abort();
              outcome.status = "up-to-date";
              outcome.digest = wanted;
              say(`up to date ${item.label} ${wanted}`);
              continue;
            }
            if (dryRun) {
              await destination.abort();
              outcome.status = "would-copy";
              if (wanted) outcome.digest = wanted;
              say(`would copy ${item.label} → ${item.shown}`);
              continue;
            }
            const result = await copyImage(source, destination, {
              jobs,
              tags: [item.tag],
              signal,
              referrers: flags.booleans.get("referrers") ?? false,
              progress: progressFor(quiet, json),
              ...(platform && { platform }),
            });
            outcome.status = "copied";
            outcome.digest = result.digest;
            say(`copied ${item.label} ${result.digest}`);
          } finally {
            await source.close();
          }
        } catch (error) {
          if (signal.aborted) throw error;
          if (error instanceof ClientError && error.kind === "usage") throw error;
          outcome.error = errorMessage(error);
          console.error(`berth sync: ${item.label}: ${outcome.error}`);
        }
      }
    });
    if (archive !== undefined && staging !== undefined && !dryRun) {
      const layout = await openOciDestination(staging, undefined, dst);
      await new OciArchiveDestination(archive, staging, layout).commit();
      staging = undefined;
    }
    if (dockerArchive !== undefined) {
      if (dockerArchive.images > 0) await dockerArchive.write();
      else await dockerArchive.discard();
      dockerArchive = undefined;
    }
    if (json) console.log(JSON.stringify({ source: src, destination: dst, tags: outcomes }));
    else if (!quiet) {
      const count = (s: Outcome["status"]) => outcomes.filter((o) => o.status === s).length;
      console.log(
        `${dryRun ? "would copy" : "copied"} ${
          count(dryRun ? "would-copy" : "copied")
        }, up to date ${count("up-to-date")}, failed ${count("failed")}`,
      );
    }
    return outcomes.some((o) => o.status === "failed") ? 1 : 0;
  } catch (error) {
    return reportFailure("sync", error, `${src} → ${dst}`);
  } finally {
    if (staging !== undefined) await Deno.remove(staging, { recursive: true }).catch(() => {});
    await dockerArchive?.discard();
    await srcPool.close();
    await destPool.close();
  }
}

/** Expand SRC and DST into one copy per tag. */
async function plan(
  src: string,
  dst: string,
  pool: ClientPool,
  filter: RegExp | undefined,
): Promise<Item[]> {
  const source = splitTransport(src);
  const destination = splitTransport(dst);
  const keep = (tag: string) => filter === undefined || filter.test(tag);
  const items: Item[] = [];
  const archive = destination.prefix === "docker-archive:";
  if (destination.prefix !== "docker://" && destination.prefix !== "oci:" && !archive) {
    throw new UsageError(
      "sync writes to docker://HOST[/PATH], oci:DIR, oci-archive:FILE or docker-archive:FILE",
    );
  }
  if (destination.prefix === "oci:" && splitPathAndTag(destination.value).tag !== undefined) {
    throw new UsageError("sync takes a layout without a tag as DST");
  }
  const target = (repository: string, wholeRegistry: boolean, tag: string): string => {
    if (destination.prefix === "oci:") return `oci:${destination.value}:${tag}`;
    if (archive) return `docker-archive:${destination.value}:${repository}:${tag}`;
    const dest = parseRepositoryReference(destination.value);
    const path = dest.repository === ""
      ? repository
      : wholeRegistry
      ? `${dest.repository}/${repository}`
      : dest.repository;
    return `docker://${dest.registry}/${path}:${tag}`;
  };
  if (source.prefix === "docker://") {
    if (/@|:[^/]+$/.test(source.value.replace(/^[^/]*/, ""))) {
      throw new UsageError("sync takes a repository or a registry as SRC, without a tag");
    }
    const ref = parseRepositoryReference(source.value);
    const client = await pool.client(ref.registry, ref.repository);
    const wholeRegistry = ref.repository === "";
    if (wholeRegistry && destination.prefix !== "docker://" && !archive) {
      throw new UsageError("a whole registry syncs only into a registry or a docker archive");
    }
    const repositories = wholeRegistry ? await client.catalog() : [ref.repository];
    for (const repository of repositories) {
      for (const tag of (await client.listTags(repository)).filter(keep).sort()) {
        const name = familiarName(`${ref.registry}/${repository}`);
        items.push({
          src: `docker://${ref.registry}/${repository}:${tag}`,
          dst: target(archive ? name : repository, wholeRegistry, tag),
          label: `${repository}:${tag}`,
          tag,
          repoTag: `${name}:${tag}`,
        });
      }
    }
    return items;
  }
  if (source.prefix === "oci:") {
    const { path, tag } = splitPathAndTag(source.value);
    if (tag !== undefined) throw new UsageError("sync takes a layout without a tag as SRC");
    const layout = await openSource(`oci:${path}`, pool);
    const tags = await layout.listTags!();
    const repository = path.split("/").filter(Boolean).pop() ?? "image";
    for (const t of tags.filter(keep).sort()) {
      items.push({
        src: `oci:${path}:${t}`,
        dst: target(repository, false, t),
        label: t,
        tag: t,
        repoTag: `${repository}:${t}`,
      });
    }
    return items;
  }
  throw new UsageError("sync reads from docker://HOST[/REPO] or oci:DIR");
}

/** `docker.io/library/alpine` → `alpine`, `docker.io/org/app` → `org/app` (as `docker save`). */
function familiarName(name: string): string {
  return name.replace(/^docker\.io\//, "").replace(/^library\/([^/]+)$/, "$1");
}
