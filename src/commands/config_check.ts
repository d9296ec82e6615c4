/**
 * `berth config check <file>`: load a config file the way `serve` does (with the `REGISTRY_*`
 * environment), print the warnings and the settings in force, exit 1 on any error.
 *
 * @module
 */
import { loadConfig } from "../config_file.ts";
import { checkAuthFiles } from "./serve_auth.ts";
import { UsageError } from "./usage_error.ts";

/** Help text of `config`. */
export const CONFIG_USAGE = `Usage: berth config check FILE

Check a distribution-style YAML config file with the REGISTRY_* environment applied, as
\`berth serve FILE\` would load it. Prints warnings (keys accepted but ignored) to stderr and the
settings in force as JSON to stdout.

Exit codes: 0 valid, 1 invalid (the message names the key), 2 usage.`;

/** Config fields whose values `config check` does not print. */
const SECRET_KEYS = new Set(["password", "secretKey", "httpSecret"]);

/** Run `config check`. */
export async function configCommand(args: string[]): Promise<number> {
  const [sub, file, ...extra] = args;
  if (sub !== "check") {
    throw new UsageError(sub ? `unknown config command "${sub}"` : "expected: check FILE");
  }
  if (file === undefined) throw new UsageError("config check needs a FILE");
  if (extra.length > 0) throw new UsageError(`unexpected argument ${extra[0]}`);
  const loaded = await loadConfig(file, { env: Deno.env.toObject() });
  for (const warning of loaded.warnings) console.error(`warning: ${warning}`);
  for (const warning of checkAuthFiles(loaded.config)) console.error(`warning: ${warning}`);
  // Secrets (passwords of mirrors, the S3 secret key, http.secret) are not printed.
  console.log(
    JSON.stringify(loaded.config, (key, value) => SECRET_KEYS.has(key) ? "***" : value, 2),
  );
  console.error(`${file}: ok`);
  return 0;
}
