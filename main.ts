/**
 * berth: an OCI distribution registry. Runs the command line (`serve` by default).
 *
 * @module
 */
import { isBcryptWorker } from "./src/auth/bcrypt_pool.ts";
import { runCli } from "./src/cli.ts";

// The bundle is also the module of the password workers, which must not run the command line.
if (import.meta.main && !isBcryptWorker()) Deno.exit(await runCli(Deno.args));
