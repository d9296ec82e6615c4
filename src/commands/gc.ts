/**
 * `berth gc`: offline garbage collection of a data directory, like distribution's
 * `registry garbage-collect`: prints what it marks and removes, and the bytes freed. Run it with
 * the registry stopped or read-only (or use the server's online collection instead).
 *
 * @module
 */
import { makeConfig } from "../config.ts";
import { ConfigError } from "../config_file.ts";
import { createRegistry } from "../services/registry.ts";
import { fsStore } from "../storage/open_store.ts";
import { UsageError } from "./usage_error.ts";

/** Help text of `gc`. */
export const GC_USAGE =
  `berth gc [--data DIR] [--dry-run] [--delete-untagged] [--grace DURATION] [--quiet]
  --data DIR          data directory (default ./data; env REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY)
  --dry-run, -d       print what would be removed, remove nothing
  --delete-untagged, -m
                      also remove manifests no tag reaches (index children and referrers of a
                      tagged manifest are kept)
  --grace DURATION    spare blobs written less than DURATION ago (e.g. 30m, 1h; default 0)
  --quiet, -q         print only the summary`;

/** Options of `berth gc`. */
export interface GcCommandOptions {
  /** Data directory. */
  dataDir: string;
  /** Remove nothing. */
  dryRun: boolean;
  /** Remove untagged manifests. */
  deleteUntagged: boolean;
  /** Grace period in milliseconds. */
  gracePeriodMs: number;
  /** Only the summary. */
  quiet: boolean;
}

/** Parse `berth gc` flags. */
export function gcOptions(
  args: string[],
  env: (key: string) => string | undefined,
): GcCommandOptions {
  const options: GcCommandOptions = {
    dataDir: env("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY") || "./data",
    dryRun: false,
    deleteUntagged: false,
    gracePeriodMs: 0,
    quiet: false,
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.indexOf("=");
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const value = () => {
      const v = eq > 0 ? arg.slice(eq + 1) : args[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    if (flag === "--data") options.dataDir = value();
    else if (flag === "--dry-run" || flag === "-d") options.dryRun = true;
    else if (flag === "--delete-untagged" || flag === "-m") options.deleteUntagged = true;
    else if (flag === "--grace") options.gracePeriodMs = parseDuration(value());
    else if (flag === "--quiet" || flag === "-q") options.quiet = true;
    else throw new UsageError(`unknown flag ${arg}`);
  }
  return options;
}

/** Parse `90s`, `30m`, `1h`, `2d` or plain milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!match) throw new UsageError(`invalid duration "${text}": expected e.g. 30m, 1h`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] ?? "ms"]!;
  return Number(match[1]) * unit;
}

/** Run `berth gc`; returns the exit code. */
export async function gcCommand(args: string[]): Promise<number> {
  const options = gcOptions(args, (key) => Deno.env.get(key));
  const info = await Deno.stat(options.dataDir).catch(() => undefined);
  if (!info?.isDirectory) {
    throw new ConfigError(
      `data directory ${options.dataDir} (--data, REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY): ${
        info ? "not a directory" : "does not exist"
      }`,
    );
  }
  const store = fsStore(options.dataDir);
  const registry = createRegistry(
    makeConfig({ dataDir: options.dataDir }),
    store,
    (level, msg, fields) => console.error(JSON.stringify({ level, msg, ...fields })),
  );
  let report;
  try {
    report = await registry.gc.run({
      dryRun: options.dryRun,
      deleteUntagged: options.deleteUntagged,
      gracePeriodMs: options.gracePeriodMs,
      log: options.quiet ? () => {} : (line) => console.log(line),
    });
  } finally {
    store.close();
  }
  console.log(JSON.stringify({
    dryRun: report.dryRun,
    repositories: report.repositories,
    blobsMarked: report.blobsMarked,
    manifestsDeleted: report.manifestsDeleted.length,
    blobsDeleted: report.blobsDeletedCount,
    blobsSpared: report.blobsSpared,
    bytesFreed: report.bytesFreed,
  }));
  return 0;
}
