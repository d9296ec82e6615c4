/**
 * `berth retention`: apply the retention rules of a config's `policies` to every repository they
 * match now, or with `--dry-run` list what would be deleted. Untagged blobs left behind go to the
 * normal garbage collection.
 *
 * @module
 */
import { loadConfig } from "../config_file.ts";
import { createRegistry } from "../services/registry.ts";
import { createStore } from "../storage/open_store.ts";
import { UsageError } from "./usage_error.ts";

/** Help text of `retention`. */
export const RETENTION_USAGE = `berth retention --config FILE [--dry-run]
  --config FILE       the registry's config (its storage and policies)
  --dry-run, -d       print what would be deleted (one JSON line each), delete nothing`;

/** Run `berth retention`; returns the exit code. */
export async function retentionCommand(args: string[]): Promise<number> {
  let file: string | undefined;
  let dryRun = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--dry-run" || arg === "-d") dryRun = true;
    else if (arg === "--config") file = args[++i];
    else if (arg.startsWith("--config=")) file = arg.slice("--config=".length);
    else throw new UsageError(`unknown flag ${arg}`);
  }
  if (file === undefined) throw new UsageError("--config FILE is required");
  const { config } = await loadConfig(file, { env: Deno.env.toObject() });
  const store = createStore(config);
  try {
    const registry = createRegistry(
      config,
      store,
      (level, msg, fields) => console.error(JSON.stringify({ level, msg, ...fields })),
    );
    const actions = await registry.policies.retainAll(registry.manifests, { dryRun });
    for (const action of actions) console.log(JSON.stringify(action));
    console.log(JSON.stringify({ dryRun, deleted: actions.length }));
  } finally {
    store.close();
  }
  return 0;
}
