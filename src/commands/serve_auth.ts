/**
 * The `serve` flags and `REGISTRY_*` variables of auth, TLS and limits, kept apart from the
 * core flags in `serve.ts`.
 *
 * @module
 */
import type { AuthConfig, Config, LimitsConfig, PolicyConfig, TokenConfig } from "../config.ts";
import { authWarnings, readAuthFiles } from "../auth/access_control.ts";
import { checkPolicy } from "../auth/policy.ts";
import { ConfigError } from "../config_file.ts";

/** Help lines of the auth, TLS and limits flags. */
export const AUTH_USAGE =
  `  --htpasswd FILE        Basic auth from an htpasswd file of bcrypt entries (htpasswd -B)
  --realm NAME           realm of the Basic challenge (default "berth")
  --token-service NAME   Bearer token auth for service NAME; with --htpasswd, berth issues
                         tokens itself at /auth/token
  --token-issuer NAME    issuer of tokens (default "berth")
  --token-realm URL      token endpoint clients are sent to (default: /auth/token on each
                         request's Host header; berth warns at start: set it)
  --token-certs FILE     also trust tokens signed by keys of these X.509 certificates (PEM)
  --token-jwks FILE      also trust tokens signed by keys of this JWKS
  --token-key FILE       sign berth's tokens with this EC P-256 key (PEM; default: made at start)
  --auth-policy FILE     authorization policy (JSON: {groups, rules: [{repositories, users,
                         groups, anonymous, actions}]}); default: any known user may do anything
  --tls-cert FILE        serve HTTPS with this certificate (PEM) ...
  --tls-key FILE         ... and this key
  --max-body BYTES       largest request body (default 64 GiB)
  --max-uploads N        most open upload sessions per user, or per client address without
                         auth (default 64)
  --upload-timeout SEC   remove upload sessions untouched this long (default 120)
  --body-timeout SEC     drop a request body that sends nothing this long (default 60)`;

/** Apply one auth/TLS/limits flag; returns `false` when `flag` is not one of them. */
export function applyAuthFlag(config: Partial<Config>, flag: string, value: () => string): boolean {
  const auth = (): AuthConfig => (config.auth ??= {});
  const token = (): TokenConfig => (auth().token ??= { service: "berth", issuer: "berth" });
  const limits = (): Partial<LimitsConfig> => (config.limits ??= {});
  switch (flag) {
    case "--htpasswd":
      auth().htpasswd = { realm: auth().htpasswd?.realm ?? "berth", path: value() };
      return true;
    case "--realm":
      auth().htpasswd = { path: auth().htpasswd?.path ?? "", realm: value() };
      return true;
    case "--token-service":
      token().service = value();
      return true;
    case "--token-issuer":
      token().issuer = value();
      return true;
    case "--token-realm":
      token().realm = value();
      return true;
    case "--token-certs":
      token().rootcertbundle = value();
      return true;
    case "--token-key":
      token().signingkey = value();
      return true;
    case "--token-jwks":
      token().jwks = value();
      return true;
    case "--auth-policy":
      auth().policy = readPolicy(value());
      return true;
    case "--tls-cert":
      config.tls = { key: config.tls?.key ?? "", certificate: value() };
      return true;
    case "--tls-key":
      config.tls = { certificate: config.tls?.certificate ?? "", key: value() };
      return true;
    case "--max-body":
      limits().maxBodyBytes = positive(flag, value());
      return true;
    case "--max-uploads":
      limits().maxUploadsPerClient = positive(flag, value());
      return true;
    case "--upload-timeout":
      limits().uploadSessionTimeoutMs = positive(flag, value()) * 1000;
      return true;
    case "--body-timeout":
      limits().bodyIdleTimeoutMs = positive(flag, value()) * 1000;
      return true;
  }
  return false;
}

/** Check what the flags built: a realm without a file, half a TLS pair. */
export function checkAuthConfig(config: Config): void {
  if (config.auth?.htpasswd && !config.auth.htpasswd.path) {
    throw new Error("--realm needs --htpasswd FILE");
  }
  const token = config.auth?.token;
  if (token && !config.auth?.htpasswd && !token.rootcertbundle && !token.jwks) {
    throw new Error(
      "token auth needs --htpasswd (berth issues tokens) or --token-certs/--token-jwks (an external issuer)",
    );
  }
  if (config.tls && (!config.tls.certificate || !config.tls.key)) {
    throw new Error("TLS needs both --tls-cert and --tls-key");
  }
}

/**
 * Read and check the files auth names (htpasswd, token certificates, JWKS, signing key), as the
 * app will at start: `serve` and `config check` run it, so they agree; returns the warnings the
 * app will log (an implicit token realm). Throws a one-line
 * {@link ConfigError} naming the setting (e.g. `auth.htpasswd.path: /etc/docker/registry is not
 * a file`).
 */
export function checkAuthFiles(config: Config): string[] {
  if (!config.auth) return [];
  try {
    readAuthFiles(config.auth);
  } catch (error) {
    throw new ConfigError(error instanceof Error ? error.message : String(error));
  }
  return authWarnings(config.auth).map((w) => `${w.msg} (${w.fields.hint})`);
}

/** Read and check a JSON policy file. */
export function readPolicy(path: string): PolicyConfig {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Deno.readTextFileSync(path));
  } catch (error) {
    throw new Error(`auth policy ${path}: ${error instanceof Error ? error.message : error}`);
  }
  return checkPolicy(parsed);
}

function positive(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`${flag} needs a positive integer`);
  return n;
}
