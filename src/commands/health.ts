/**
 * `berth health`: ask a running berth for `/healthz`; exit 0 when healthy. For container health
 * checks in an image that has no shell or curl.
 *
 * @module
 */
import { parseAddr } from "../config.ts";
import { UsageError } from "./usage_error.ts";

/** Help text of `health`. */
export const HEALTH_USAGE = `Usage: berth health [URL]

Ask a running berth whether it is healthy (GET URL/healthz). URL defaults to the local address
of REGISTRY_HTTP_ADDR, else http://127.0.0.1:5000. Needs --allow-net (and --allow-env).

Exit codes: 0 healthy, 1 unhealthy or unreachable, 2 usage.`;

/** The base URL to probe when none is given. */
export function localUrl(addr: string | undefined): string {
  if (!addr) return "http://127.0.0.1:5000";
  const { hostname, port } = parseAddr(addr);
  const host = hostname === "0.0.0.0" || hostname === "::" ? "127.0.0.1" : hostname;
  return `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/** Run `health`. */
export async function healthCommand(args: string[]): Promise<number> {
  if (args.length > 1) throw new UsageError(`unexpected argument ${args[1]}`);
  let base = args[0];
  if (base === undefined) {
    let addr: string | undefined;
    try {
      addr = Deno.env.get("REGISTRY_HTTP_ADDR");
    } catch { /* no env permission: the default address */ }
    base = localUrl(addr);
  }
  try {
    const response = await fetch(`${base.replace(/\/+$/, "")}/healthz`, {
      signal: AbortSignal.timeout(5_000),
    });
    const body = await response.text();
    console.log(body);
    return response.ok ? 0 : 1;
  } catch (error) {
    console.error(`berth health: ${base}: ${(error as Error).message}`);
    return 1;
  }
}
