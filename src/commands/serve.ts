/**
 * `berth serve`: read flags and environment into a config, build the app, serve until SIGTERM or
 * SIGINT.
 *
 * @module
 */
import { createApp } from "../app.ts";
import { type Config, makeConfig, parseAddr } from "../config.ts";
import { applyAuthEnv, applyAuthFlag, AUTH_USAGE, checkAuthConfig } from "./serve_auth.ts";

/** Help text of `serve`. */
export const SERVE_USAGE = `berth serve [--addr HOST:PORT] [--data DIR]
  --addr HOST:PORT   listen address (default 0.0.0.0:5000; env REGISTRY_HTTP_ADDR)
  --data DIR         data directory (default ./data; env REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY)
${AUTH_USAGE}`;

/** Read `serve` flags and environment into a config (flags over environment over defaults). */
export function serveConfig(args: string[], env: (key: string) => string | undefined): Config {
  const overrides: Partial<Config> = {};
  const addr = env("REGISTRY_HTTP_ADDR");
  const root = env("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY");
  if (addr) overrides.addr = addr;
  if (root) overrides.dataDir = root;
  applyAuthEnv(overrides, env);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.indexOf("=");
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const value = () => {
      const v = eq > 0 ? arg.slice(eq + 1) : args[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    if (flag === "--addr") overrides.addr = value();
    else if (flag === "--data") overrides.dataDir = value();
    else if (!applyAuthFlag(overrides, flag, value)) throw new Error(`unknown flag ${arg}`);
  }
  const config = makeConfig(overrides);
  parseAddr(config.addr);
  checkAuthConfig(config);
  return config;
}

/** Run the registry until a signal stops it; returns the exit code. */
export async function serveCommand(args: string[]): Promise<number> {
  const config = serveConfig(args, (key) => Deno.env.get(key));
  const app = createApp(config);
  const { hostname, port } = parseAddr(config.addr);
  const server = Deno.serve({
    hostname,
    port,
    ...(config.tls && {
      cert: Deno.readTextFileSync(config.tls.certificate),
      key: Deno.readTextFileSync(config.tls.key),
    }),
    onListen: (addr) =>
      console.log(JSON.stringify({
        level: "info",
        time: new Date().toISOString(),
        message: "listening",
        addr: `${addr.hostname}:${addr.port}`,
        data: config.dataDir,
        tls: config.tls !== undefined,
      })),
  }, app.handler);
  const stop = () => {
    server.shutdown();
  };
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  await server.finished;
  Deno.removeSignalListener("SIGTERM", stop);
  Deno.removeSignalListener("SIGINT", stop);
  await app.close();
  return 0;
}
