/**
 * `parseConfig`: the configuration parser with the YAML parser loaded, for callers that parse
 * config text synchronously (tests, tools). `berth serve` goes through `loadConfig`
 * (src/config_file.ts), which loads the YAML package only when the file or a variable needs it.
 *
 * @module
 */
import { parse } from "yaml";
import { type ConfigSources, type LoadedConfig, parseConfigWith } from "./config_file.ts";

/**
 * Parse a distribution-style YAML config (`text` may be empty: defaults and environment only),
 * apply `REGISTRY_*` environment variables, then flags. Throws `ConfigError`.
 */
export function parseConfig(
  text: string,
  sources: ConfigSources & { source?: string } = {},
): LoadedConfig {
  return parseConfigWith(text, { ...sources, yaml: parse });
}
