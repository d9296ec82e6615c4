/**
 * `berth version`: berth's version and the runtime's.
 *
 * @module
 */
import { VERSION } from "../version.ts";
import { UsageError } from "./usage_error.ts";

/** Help text of `version`. */
export const VERSION_USAGE = `Usage: berth version

Print berth's version and the Deno, V8 and TypeScript versions it runs on.`;

/** Print the versions. */
export function versionCommand(args: string[]): Promise<number> {
  if (args.length > 0) throw new UsageError(`unexpected argument ${args[0]}`);
  const { deno, v8, typescript } = Deno.version;
  console.log(`berth ${VERSION} (deno ${deno}, v8 ${v8}, typescript ${typescript})`);
  return Promise.resolve(0);
}
