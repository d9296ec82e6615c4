/**
 * `berth copy SRC DST`: copy an image between registries, OCI layouts and archives, skopeo's
 * syntax (`docker://`, `oci:`, `oci-archive:`, `docker-archive:`).
 *
 * @module
 */
import { copyImage, type CopyResult } from "../copy/copy.ts";
import { parsePlatform } from "../copy/platform.ts";
import { NO_PROGRESS, type ProgressSink, TerminalProgress } from "../copy/progress.ts";
import { ClientPool } from "../transports/client_pool.ts";
import { openDestination, openSource } from "../transports/mod.ts";
import type { ImageDestination, ImageSource } from "../transports/types.ts";
import {
  parseFlags,
  positiveInt,
  reportFailure,
  SIDE_FLAGS,
  SIDE_FLAGS_USAGE,
  sideOptions,
  withInterrupt,
} from "./client_flags.ts";
import { UsageError } from "./usage_error.ts";

/** Help text of `copy`. */
export const COPY_USAGE = `Usage: berth copy [flags] SRC DST

Copy an image. SRC and DST are one of
  docker://HOST[:PORT]/REPO[:TAG|@DIGEST]   a registry
  oci:DIR[:TAG]                             an OCI image layout
  oci-archive:FILE[:TAG]                    an OCI layout in a tar file
  docker-archive:FILE[:REPO:TAG]            docker save format (one image)
  dir:DIR                                   skopeo's directory format
An index is copied with every manifest it lists, keeping every digest.

Flags:
  --platform OS/ARCH[/VARIANT]
                      copy only that platform's manifest of an index (unchanged)
  --all, -a           copy every platform (the default; accepted for skopeo users)
  -r, --referrers     also copy referrers (signatures, SBOMs, ...), recursively
  --jobs N            blobs copied in parallel (default 6)
  --dest-tag TAG      also tag the copy TAG (repeatable)
  -q, --quiet         print nothing but errors
  --json              print a JSON summary on stdout
${SIDE_FLAGS_USAGE}

Exit codes: 0 copied, 1 failure (one line on stderr), 2 usage error.`;

const SPEC = {
  flags: {
    ...SIDE_FLAGS,
    platform: "string",
    all: "boolean",
    referrers: "boolean",
    jobs: "string",
    "dest-tag": "list",
    quiet: "boolean",
    json: "boolean",
  },
  aliases: { a: "all", r: "referrers", q: "quiet" },
} as const;

/** Pick the progress sink: the terminal renderer only on a TTY and without --quiet/--json. */
export function progressFor(quiet: boolean, json: boolean): ProgressSink {
  if (quiet || json || !Deno.stderr.isTerminal()) return NO_PROGRESS;
  return new TerminalProgress();
}

/** A one-line human summary of a copy. */
export function describeCopy(src: string, dst: string, result: CopyResult): string {
  const b = result.blobs;
  return `copied ${src} to ${dst}: ${result.digest} (${result.manifests} manifest${
    result.manifests === 1 ? "" : "s"
  }${
    result.referrers ? `, ${result.referrers} referrers` : ""
  }; blobs: ${b.copied} copied, ${b.existing} already there, ${b.mounted} mounted)`;
}

/** Run `copy`. */
export async function copyCommand(args: string[]): Promise<number> {
  const flags = parseFlags(args, SPEC);
  if (flags.positionals.length !== 2) throw new UsageError("copy needs SRC and DST");
  const [src, dst] = flags.positionals as [string, string];
  const quiet = flags.booleans.get("quiet") ?? false;
  const json = flags.booleans.get("json") ?? false;
  const platformFlag = flags.strings.get("platform");
  const jobs = positiveInt(flags, "jobs", 6);
  const srcPool = new ClientPool(sideOptions(flags, "src"));
  const destPool = new ClientPool(sideOptions(flags, "dest"));
  let source: ImageSource | undefined;
  let destination: ImageDestination | undefined;
  try {
    const platform = platformFlag === undefined ? undefined : parsePlatform(platformFlag);
    // Both ends open at once (credentials, certificates); whichever opened is closed below.
    const [opened, target] = await Promise.allSettled([
      openSource(src, srcPool),
      openDestination(dst, destPool),
    ]);
    if (opened.status === "fulfilled") source = opened.value;
    if (target.status === "fulfilled") destination = target.value;
    if (opened.status === "rejected") throw opened.reason;
    if (target.status === "rejected") throw target.reason;
    const dest = target.value;
    const extra = flags.lists.get("dest-tag") ?? [];
    const tags = [...new Set([...(dest.tag === undefined ? [] : [dest.tag]), ...extra])];
    const result = await withInterrupt((signal) =>
      copyImage(source!, dest, {
        jobs,
        tags,
        signal,
        referrers: flags.booleans.get("referrers") ?? false,
        progress: progressFor(quiet, json),
        ...(platform && { platform }),
      })
    );
    if (json) console.log(JSON.stringify({ source: src, destination: dst, ...result }));
    else if (!quiet) console.log(describeCopy(src, dst, result));
    return 0;
  } catch (error) {
    if (destination) await destination.abort().catch(() => {});
    return reportFailure("copy", error, `${src} → ${dst}`);
  } finally {
    await source?.close().catch(() => {});
    await srcPool.close();
    await destPool.close();
  }
}
