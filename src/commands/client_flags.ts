/**
 * Flags shared by the client commands (`copy`, `sync`, `inspect`, `list-tags`): a small parser
 * (`--flag value`, `--flag=value`, `--bool=false`, repeatable flags), the per-side registry
 * options, Ctrl-C handling, and how errors become one line and an exit code.
 *
 * @module
 */
import { parseCredentials } from "../client/credentials.ts";
import { ClientError, errorMessage } from "../client/errors.ts";
import type { SideOptions } from "../transports/client_pool.ts";
import { UsageError } from "./usage_error.ts";

/** How a flag takes its value. */
export type FlagKind = "boolean" | "string" | "list";

/** A flag table: long name → kind (and short aliases). */
export interface FlagSpec {
  /** Long names (without `--`) and their kind. */
  flags: Record<string, FlagKind>;
  /** Short aliases: `-q` → `quiet`. */
  aliases?: Record<string, string>;
}

/** Parsed flags. */
export interface ParsedFlags {
  /** Boolean flags given. */
  booleans: Map<string, boolean>;
  /** String flags given (last wins). */
  strings: Map<string, string>;
  /** Repeatable flags. */
  lists: Map<string, string[]>;
  /** Arguments that are not flags. */
  positionals: string[];
}

/** Parse `args` against `spec`; throws {@link UsageError}. */
export function parseFlags(args: string[], spec: FlagSpec): ParsedFlags {
  const parsed: ParsedFlags = {
    booleans: new Map(),
    strings: new Map(),
    lists: new Map(),
    positionals: [],
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      parsed.positionals.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      parsed.positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const raw = eq > 0 ? arg.slice(0, eq) : arg;
    const name = raw.startsWith("--") ? raw.slice(2) : spec.aliases?.[raw.slice(1)];
    const kind = name === undefined ? undefined : spec.flags[name];
    if (name === undefined || kind === undefined) throw new UsageError(`unknown flag ${raw}`);
    if (kind === "boolean") {
      const value = eq > 0 ? arg.slice(eq + 1) : "true";
      if (value !== "true" && value !== "false") throw new UsageError(`${raw} takes true or false`);
      parsed.booleans.set(name, value === "true");
      continue;
    }
    const value = eq > 0 ? arg.slice(eq + 1) : args[++i];
    if (value === undefined) throw new UsageError(`${raw} needs a value`);
    if (kind === "string") parsed.strings.set(name, value);
    else parsed.lists.set(name, [...(parsed.lists.get(name) ?? []), value]);
  }
  return parsed;
}

/** The registry flags of both sides, as usage text. */
export const SIDE_FLAGS_USAGE = `  --src-creds USER:PASS, --dest-creds USER:PASS
                      credentials (default: the auth files below)
  --authfile FILE     auth file (default: $REGISTRY_AUTH_FILE, then
                      $XDG_RUNTIME_DIR/containers/auth.json, then ~/.docker/config.json)
  --src-authfile FILE, --dest-authfile FILE
  --src-tls-verify=false, --dest-tls-verify=false
                      allow plain HTTP and skip certificate verification
  --src-cert-dir DIR, --dest-cert-dir DIR
                      *.crt CA certificates, *.cert/*.key client certificate`;

/** The flag table entries of both sides. */
export const SIDE_FLAGS: Record<string, FlagKind> = {
  "src-creds": "string",
  "dest-creds": "string",
  "creds": "string",
  "authfile": "string",
  "src-authfile": "string",
  "dest-authfile": "string",
  "src-tls-verify": "boolean",
  "dest-tls-verify": "boolean",
  "tls-verify": "boolean",
  "src-cert-dir": "string",
  "dest-cert-dir": "string",
  "cert-dir": "string",
};

/** One side's options from the parsed flags (`src` or `dest`; un-prefixed flags apply to both). */
export function sideOptions(flags: ParsedFlags, side: "src" | "dest"): SideOptions {
  const string = (key: string) => flags.strings.get(`${side}-${key}`) ?? flags.strings.get(key);
  const creds = string("creds");
  const authfile = string("authfile");
  const certDir = string("cert-dir");
  const verify = flags.booleans.get(`${side}-tls-verify`) ?? flags.booleans.get("tls-verify");
  let credentials;
  try {
    credentials = creds === undefined ? undefined : parseCredentials(creds);
  } catch (error) {
    throw new UsageError(`--${side}-creds: ${errorMessage(error)}`);
  }
  return {
    ...(credentials && { credentials }),
    ...(authfile !== undefined && { authfile }),
    ...(certDir !== undefined && { certDir }),
    ...(verify !== undefined && { tlsVerify: verify }),
  };
}

/** Run `body` with an abort signal that Ctrl-C (SIGINT) and SIGTERM fire. */
export async function withInterrupt<T>(body: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onSignal = () => controller.abort(new ClientError("aborted", "interrupted"));
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, onSignal);
  try {
    return await body(controller.signal);
  } finally {
    for (const s of signals) Deno.removeSignalListener(s, onSignal);
  }
}

/**
 * Report a failure of a client command: one line on stderr, exit 1; a usage problem becomes a
 * {@link UsageError} (exit 2, with the usage).
 */
export function reportFailure(command: string, error: unknown, context?: string): number {
  if (error instanceof UsageError) throw error;
  if (error instanceof ClientError && error.kind === "usage") throw new UsageError(error.message);
  const message = errorMessage(error);
  const prefix = error instanceof ClientError || context === undefined ? "" : `${context}: `;
  console.error(`berth ${command}: ${prefix}${message}`);
  return 1;
}

/** A positive integer flag value. */
export function positiveInt(flags: ParsedFlags, name: string, fallback: number): number {
  const value = flags.strings.get(name);
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name} must be a positive integer`);
  return n;
}
