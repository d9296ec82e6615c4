/**
 * Docker credential helpers: `credHelpers` (per registry) and `credsStore` (all registries) of
 * `~/.docker/config.json` name a program `docker-credential-NAME`; `get` reads the server URL on
 * stdin and prints `{"ServerURL", "Username", "Secret"}` (user `<token>`: an identity token).
 *
 * @module
 */
import type { Credentials } from "./credentials.ts";
import { ClientError, errorMessage } from "./errors.ts";
import { DOCKER_HUB } from "./reference.ts";

/** The server URL helpers know Docker Hub by; other registries by `host[:port]`. */
const DOCKER_HUB_SERVER = "https://index.docker.io/v1/";

/** What helpers print when they hold nothing for the server. */
const NOT_FOUND = /credentials not found/i;

/** The server URL passed to a helper for `registry`. */
export function helperServerUrl(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_SERVER : registry;
}

/** The helper that serves `registry` in a parsed config (`credHelpers` first, then `credsStore`). */
export function helperFor(
  config: { credHelpers?: Record<string, string>; credsStore?: string },
  registry: string,
  normalize: (key: string) => string,
): string | undefined {
  for (const [key, name] of Object.entries(config.credHelpers ?? {})) {
    if (normalize(key) === registry && name) return name;
  }
  return config.credsStore || undefined;
}

/**
 * Ask `docker-credential-NAME get` for `registry`'s credentials; undefined when it holds none.
 * A helper that is missing, not allowed to run, or fails otherwise is an `auth` error naming it.
 */
export async function runCredentialHelper(
  name: string,
  registry: string,
): Promise<Credentials | undefined> {
  const program = `docker-credential-${name}`;
  if (!/^[A-Za-z0-9._-]+$/.test(name)) {
    throw new ClientError("invalid", `credential helper name "${name}" is not valid`);
  }
  let output: Deno.CommandOutput;
  try {
    const child = new Deno.Command(program, {
      args: ["get"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    // A helper that exits without reading its input (a failing one) breaks the pipe: its exit
    // status and output say what happened, not the write.
    await writer.write(new TextEncoder().encode(helperServerUrl(registry)))
      .then(() => writer.close())
      .catch(() => {});
    output = await child.output();
  } catch (error) {
    // Deno's own message says how to allow running it (--allow-run) when that is missing.
    const why = error instanceof Deno.errors.NotFound ? "not found on PATH" : errorMessage(error);
    throw new ClientError("auth", `credential helper ${program}: ${why}`);
  }
  const stdout = new TextDecoder().decode(output.stdout).trim();
  if (!output.success) {
    const said = `${stdout} ${new TextDecoder().decode(output.stderr)}`.trim();
    if (NOT_FOUND.test(said)) return undefined;
    throw new ClientError(
      "auth",
      `credential helper ${program} failed for ${registry}: ${said.split("\n")[0] || output.code}`,
    );
  }
  let parsed: { Username?: unknown; Secret?: unknown };
  try {
    parsed = JSON.parse(stdout);
  } catch {
    throw new ClientError("auth", `credential helper ${program} did not print JSON`);
  }
  if (typeof parsed.Secret !== "string" || parsed.Secret === "") return undefined;
  const username = typeof parsed.Username === "string" ? parsed.Username : "";
  return { username: username || "<token>", password: parsed.Secret };
}
