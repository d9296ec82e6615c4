/**
 * The `berth` command line: a table of subcommands, `serve` by default.
 *
 * @module
 */
import { UsageError } from "./commands/usage_error.ts";

/** A loaded subcommand: its usage, and how to run it (returns an exit code). */
interface LoadedCommand {
  usage: string;
  run(args: string[]): Promise<number>;
}

/**
 * A subcommand: what it does in one line, and its module, loaded on use (a client command then
 * starts without loading the server and its dependencies).
 */
interface Command {
  summary: string;
  load(): Promise<LoadedCommand>;
}

const COMMANDS: Record<string, Command> = {
  serve: {
    summary: "run the registry (the default)",
    load: async () => {
      const m = await import("./commands/serve.ts");
      return { usage: m.SERVE_USAGE, run: m.serveCommand };
    },
  },
  gc: {
    summary: "collect garbage in a data directory (offline)",
    load: async () => {
      const m = await import("./commands/gc.ts");
      return { usage: m.GC_USAGE, run: m.gcCommand };
    },
  },
  version: {
    summary: "print the version",
    load: async () => {
      const m = await import("./commands/version.ts");
      return { usage: m.VERSION_USAGE, run: m.versionCommand };
    },
  },
  health: {
    summary: "probe a running berth's /healthz",
    load: async () => {
      const m = await import("./commands/health.ts");
      return { usage: m.HEALTH_USAGE, run: m.healthCommand };
    },
  },
  copy: {
    summary: "copy an image: copy SRC DST",
    load: async () => {
      const m = await import("./commands/copy.ts");
      return { usage: m.COPY_USAGE, run: m.copyCommand };
    },
  },
  sync: {
    summary: "copy every tag of a repository or registry",
    load: async () => {
      const m = await import("./commands/sync.ts");
      return { usage: m.SYNC_USAGE, run: m.syncCommand };
    },
  },
  inspect: {
    summary: "show an image (skopeo inspect's JSON)",
    load: async () => {
      const m = await import("./commands/inspect.ts");
      return { usage: m.INSPECT_USAGE, run: m.inspectCommand };
    },
  },
  "list-tags": {
    summary: "list a repository's tags",
    load: async () => {
      const m = await import("./commands/list_tags.ts");
      return { usage: m.LIST_TAGS_USAGE, run: m.listTagsCommand };
    },
  },
  retention: {
    summary: "apply the retention policies now (--dry-run: list only)",
    load: async () => {
      const m = await import("./commands/retention.ts");
      return { usage: m.RETENTION_USAGE, run: m.retentionCommand };
    },
  },
  config: {
    summary: "check a config file: config check FILE",
    load: async () => {
      const m = await import("./commands/config_check.ts");
      return { usage: m.CONFIG_USAGE, run: m.configCommand };
    },
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
  if (first === "--version" || first === "-V") {
    return await (await COMMANDS.version!.load()).run([]);
  }
  if (first === "help" || first === "--help" || first === "-h") {
    const command = rest[0] === undefined ? undefined : COMMANDS[rest[0]];
    if (rest[0] !== undefined && !command) {
      console.error(`berth: unknown command "${rest[0]}"\n\n${usage()}`);
      return 2;
    }
    console.log(command ? (await command.load()).usage : usage());
    return 0;
  }
  const name = first === undefined || first.startsWith("-") ? "serve" : first;
  const command = COMMANDS[name];
  if (!command) {
    console.error(`berth: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  const commandArgs = name === first ? rest : args;
  const loaded = await command.load();
  if (commandArgs.includes("--help") || commandArgs.includes("-h")) {
    console.log(loaded.usage);
    return 0;
  }
  try {
    return await loaded.run(commandArgs);
  } catch (error) {
    // One line naming the cause: startup failures are the operator's to fix, not stack traces.
    const message = error instanceof Error ? error.message : String(error);
    console.error(`berth ${name}: ${message.split("\n")[0]}`);
    if (error instanceof UsageError) {
      console.error(`\n${loaded.usage}`);
      return 2;
    }
    return 1;
  }
}
