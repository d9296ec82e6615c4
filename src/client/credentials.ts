/**
 * Registry credentials: `USER:PASS` given on the command line, or the auth files users already
 * have (`--authfile`, `$REGISTRY_AUTH_FILE`, `${XDG_RUNTIME_DIR}/containers/auth.json`,
 * `~/.docker/config.json`), looked up by registry (and by repository, longest key first); a
 * config's `credHelpers` or `credsStore` helper is asked first.
 *
 * @module
 */
import { helperFor, runCredentialHelper } from "./credential_helper.ts";
import { ClientError } from "./errors.ts";
import { DOCKER_HUB } from "./reference.ts";

/** A user name and password (or an identity token as the password with user `<token>`). */
export interface Credentials {
  /** User name. */
  username: string;
  /** Password or token. */
  password: string;
}

/** Parse `USER:PASS` (the password may contain colons); throws `invalid`. */
export function parseCredentials(value: string): Credentials {
  const colon = value.indexOf(":");
  if (colon <= 0) throw new ClientError("usage", "credentials must be USER:PASSWORD");
  return { username: value.slice(0, colon), password: value.slice(colon + 1) };
}

/** Where auth files are looked for, first match wins; `authfile` replaces the defaults. */
export function authFilePaths(
  env: (key: string) => string | undefined,
  authfile?: string,
): string[] {
  if (authfile) return [authfile];
  const paths: string[] = [];
  const registryAuth = env("REGISTRY_AUTH_FILE");
  if (registryAuth) paths.push(registryAuth);
  const runtime = env("XDG_RUNTIME_DIR");
  if (runtime) paths.push(`${runtime}/containers/auth.json`);
  const home = env("HOME");
  if (home) paths.push(`${home}/.docker/config.json`);
  return paths;
}

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
}

/** Normalize an auths key: strip a scheme and `/v1/`-style paths, Docker Hub's aliases. */
function normalizeKey(key: string): string {
  let k = key.replace(/^https?:\/\//, "").replace(/\/+$/, "");
  if (k === "index.docker.io/v1" || k === "index.docker.io" || k === "registry-1.docker.io") {
    k = DOCKER_HUB;
  }
  return k.replace(/\/v[12]$/, "");
}

function entryCredentials(entry: AuthEntry): Credentials | undefined {
  if (entry.identitytoken) return { username: "<token>", password: entry.identitytoken };
  if (entry.auth) {
    try {
      return parseCredentials(atob(entry.auth));
    } catch {
      return undefined;
    }
  }
  if (entry.username && entry.password) {
    return { username: entry.username, password: entry.password };
  }
  return undefined;
}

/** Credentials for `registry/repository` from the `auths` of one parsed auth file. */
export function lookupAuths(
  auths: Record<string, AuthEntry>,
  registry: string,
  repository: string,
): Credentials | undefined {
  const wanted = repository ? `${registry}/${repository}` : registry;
  let best: { length: number; credentials: Credentials } | undefined;
  for (const [key, entry] of Object.entries(auths)) {
    const k = normalizeKey(key);
    if (wanted !== k && !wanted.startsWith(`${k}/`)) continue;
    const credentials = entryCredentials(entry);
    if (credentials && (!best || k.length > best.length)) best = { length: k.length, credentials };
  }
  return best?.credentials;
}

/** Find credentials for `registry/repository` in the first auth file that has them. */
export async function findCredentials(
  registry: string,
  repository: string,
  options: { authfile?: string; env?: (key: string) => string | undefined } = {},
): Promise<Credentials | undefined> {
  const env = options.env ?? safeEnv;
  for (const path of authFilePaths(env, options.authfile)) {
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (error) {
      if (options.authfile && !(error instanceof Deno.errors.NotFound)) {
        throw new ClientError(
          "invalid",
          `cannot read auth file ${path}: ${(error as Error).message}`,
        );
      }
      if (options.authfile) throw new ClientError("invalid", `auth file ${path} not found`);
      continue;
    }
    let parsed: {
      auths?: Record<string, AuthEntry>;
      credHelpers?: Record<string, string>;
      credsStore?: string;
    };
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new ClientError("invalid", `auth file ${path} is not valid JSON`);
    }
    const helper = helperFor(parsed, registry, normalizeKey);
    const found = (helper && await runCredentialHelper(helper, registry)) ??
      lookupAuths(parsed.auths ?? {}, registry, repository);
    if (found) return found;
  }
  return undefined;
}

function safeEnv(key: string): string | undefined {
  try {
    return Deno.env.get(key);
  } catch {
    return undefined;
  }
}
