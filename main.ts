/**
 * berth: an OCI distribution registry. Runs the command line (`serve` by default).
 *
 * @module
 */
import { runCli } from "./src/cli.ts";

if (import.meta.main) Deno.exit(await runCli(Deno.args));
