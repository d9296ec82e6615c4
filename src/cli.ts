/**
 * The `berth` command line: a table of subcommands, `serve` by default.
 *
 * @module
 */
import { COPY_USAGE, copyCommand } from "./commands/copy.ts";
import { GC_USAGE, gcCommand } from "./commands/gc.ts";
import { CONFIG_USAGE, configCommand } from "./commands/config_check.ts";
import { HEALTH_USAGE, healthCommand } from "./commands/health.ts";
import { INSPECT_USAGE, inspectCommand } from "./commands/inspect.ts";
import { LIST_TAGS_USAGE, listTagsCommand } from "./commands/list_tags.ts";
import { RETENTION_USAGE, retentionCommand } from "./commands/retention.ts";
import { SERVE_USAGE, serveCommand } from "./commands/serve.ts";
import { SYNC_USAGE, syncCommand } from "./commands/sync.ts";
import { UsageError } from "./commands/usage_error.ts";
import { VERSION_USAGE, versionCommand } from "./commands/version.ts";

/** A subcommand: what it does in one line, its usage, and how to run it (returns an exit code). */
interface Command {
  summary: string;
  usage: string;
  run(args: string[]): Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  serve: { summary: "run the registry (the default)", usage: SERVE_USAGE, run: serveCommand },
  gc: { summary: "collect garbage in a data directory (offline)", usage: GC_USAGE, run: gcCommand },
  version: { summary: "print the version", usage: VERSION_USAGE, run: versionCommand },
  health: { summary: "probe a running berth's /healthz", usage: HEALTH_USAGE, run: healthCommand },
  copy: { summary: "copy an image: copy SRC DST", usage: COPY_USAGE, run: copyCommand },
  sync: {
    summary: "copy every tag of a repository or registry",
    usage: SYNC_USAGE,
    run: syncCommand,
  },
  inspect: {
    summary: "show an image (skopeo inspect's JSON)",
    usage: INSPECT_USAGE,
    run: inspectCommand,
  },
  "list-tags": {
    summary: "list a repository's tags",
    usage: LIST_TAGS_USAGE,
    run: listTagsCommand,
  },
  retention: {
    summary: "apply the retention policies now (--dry-run: list only)",
    usage: RETENTION_USAGE,
    run: retentionCommand,
  },
  config: {
    summary: "check a config file: config check FILE",
    usage: CONFIG_USAGE,
    run: configCommand,
  },
};

/** Exit codes, shown in the help. */
const EXIT_CODES =
  "\nExit codes: 0 success, 1 failure (invalid config, cannot listen, I/O error), 2 usage error.\n";

/** The top-level help text. */
export function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return `berth: an OCI distribution registry\n\nUsage: berth <command> [flags]\n\nCommands:\n${
    lines.join("\n")
  }\n  help       show this text, or a command's (berth help <command>)\n${EXIT_CODES}`;
}

/** Run the command line; returns the process exit code. */
export async function runCli(args: string[]): Promise<number> {
  const [first, ...rest] = args;
  if (first === "--version" || first === "-V") return await versionCommand([]);
  if (first === "help" || first === "--help" || first === "-h") {
    const command = rest[0] === undefined ? undefined : COMMANDS[rest[0]];
    if (rest[0] !== undefined && !command) {
      console.error(`berth: unknown command "${rest[0]}"\n\n${usage()}`);
      return 2;
    }
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
    // One line naming the cause: startup failures are the operator's to fix, not stack traces.
    const message = error instanceof Error ? error.message : String(error);
    console.error(`berth ${name}: ${message.split("\n")[0]}`);
    if (error instanceof UsageError) {
      console.error(`\n${command.usage}`);
      return 2;
    }
    return 1;
  }
}
