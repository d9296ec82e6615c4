/**
 * The `berth` command line: a table of subcommands, `serve` by default.
 *
 * @module
 */
import { GC_USAGE, gcCommand } from "./commands/gc.ts";
import { SERVE_USAGE, serveCommand } from "./commands/serve.ts";

/** A subcommand: what it does in one line, its usage, and how to run it (returns an exit code). */
interface Command {
  summary: string;
  usage: string;
  run(args: string[]): Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  serve: { summary: "run the registry (the default)", usage: SERVE_USAGE, run: serveCommand },
  gc: { summary: "collect garbage in a data directory (offline)", usage: GC_USAGE, run: gcCommand },
};

/** The top-level help text. */
export function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return `berth: an OCI distribution registry\n\nUsage: berth <command> [flags]\n\nCommands:\n${
    lines.join("\n")
  }\n  help       show this text, or a command's (berth help <command>)\n`;
}

/** Run the command line; returns the process exit code. */
export async function runCli(args: string[]): Promise<number> {
  const [first, ...rest] = args;
  if (first === "help" || first === "--help" || first === "-h") {
    const command = rest[0] === undefined ? undefined : COMMANDS[rest[0]];
    console.log(command ? command.usage : usage());
    return 0;
  }
  const name = first === undefined || first.startsWith("-") ? "serve" : first;
  const command = COMMANDS[name];
  if (!command) {
    console.error(`berth: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  const commandArgs = name === first ? rest : args;
  if (commandArgs.includes("--help") || commandArgs.includes("-h")) {
    console.log(command.usage);
    return 0;
  }
  try {
    return await command.run(commandArgs);
  } catch (error) {
    console.error(`berth ${name}: ${error instanceof Error ? error.message : error}`);
    return 2;
  }
}
