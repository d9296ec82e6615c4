/**
 * Running the `berth` command line as a child process in client tests.
 *
 * @module
 */
import { berthCommand } from "../helpers/server.ts";

/** The result of one run. */
export interface CliRun {
  /** Exit code. */
  code: number;
  /** Standard output. */
  stdout: string;
  /** Standard error. */
  stderr: string;
}

/** Run `berth ARGS`; returns its exit code and output. */
export async function berth(args: string[]): Promise<CliRun> {
  const [cmd, ...rest] = berthCommand();
  const output = await new Deno.Command(cmd!, {
    args: [...rest, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}
