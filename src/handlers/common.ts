/**
 * Small pieces every handler uses: the repository name from the path, the delete switch, and
 * responses.
 *
 * @module
 */
import { RegistryError } from "../errors.ts";
import type { Params } from "../http/router.ts";
import { checkName } from "../oci/names.ts";
import type { Registry } from "../services/registry.ts";

/** The validated repository name of a request. */
export function repoName(params: Params): string {
  return checkName(params.name ?? "");
}

/** Throw `UNSUPPORTED` (405) when deletes are disabled. */
export function requireDeletes(registry: Registry): void {
  if (!registry.config.deleteEnabled) {
    throw new RegistryError("UNSUPPORTED", null, {
      message: "deletes are disabled on this registry",
    });
  }
}

/**
 * A response with a body, its headers set after it is built: Deno's constructor is slower per
 * header of `init` when a body is given than `set` is (figures: bench/measurements.md).
 */
export function respond(
  body: BodyInit | null,
  status: number,
  headers: Record<string, string>,
): Response {
  const response = new Response(body, { status });
  for (const key in headers) response.headers.set(key, headers[key]!);
  return response;
}

/** An empty response with a status and headers. */
export function empty(status: number, headers: Record<string, string> = {}): Response {
  return new Response(null, { status, headers: { "Content-Length": "0", ...headers } });
}
