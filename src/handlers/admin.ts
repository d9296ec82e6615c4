/**
 * Admin endpoints (off unless `config.gc.adminEndpoint`): `POST /admin/gc` runs an online garbage
 * collection now and answers its report as JSON; `?dryRun=true` removes nothing.
 *
 * @module
 */
import { RegistryError } from "../errors.ts";
import type { Handler } from "../http/router.ts";
import type { Registry } from "../services/registry.ts";

/** Handlers of `/admin/...`. */
export function adminHandlers(registry: Registry): Record<"gc", Handler> {
  return {
    async gc({ url }) {
      if (!registry.config.gc.adminEndpoint) {
        throw new RegistryError("ROUTE_UNKNOWN", { path: url.pathname });
      }
      const report = await registry.maintenance.collect({
        dryRun: url.searchParams.get("dryRun") === "true",
      });
      return new Response(JSON.stringify(report), {
        headers: { "Content-Type": "application/json; charset=utf-8" },
      });
    },
  };
}
