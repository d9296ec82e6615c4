/**
 * Platforms (`OS/ARCH[/VARIANT]`): parsing the flag, the host's, and picking an index entry.
 *
 * @module
 */
import { ClientError } from "../client/errors.ts";
import type { Descriptor } from "../oci/manifest.ts";

/** A platform as an index entry describes it. */
export interface Platform {
  /** e.g. `linux`. */
  os: string;
  /** e.g. `amd64`. */
  architecture: string;
  /** e.g. `v8`. */
  variant?: string;
}

/** Parse `OS/ARCH[/VARIANT]`; throws `invalid`. */
export function parsePlatform(value: string): Platform {
  const parts = value.split("/");
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === "")) {
    throw new ClientError("usage", `invalid platform "${value}": expected OS/ARCH[/VARIANT]`);
  }
  return {
    os: parts[0]!,
    architecture: parts[1]!,
    ...(parts[2] !== undefined && { variant: parts[2] }),
  };
}

/** The platform berth runs on, in OCI's words. */
export function hostPlatform(): Platform {
  const architecture = Deno.build.arch === "aarch64" ? "arm64" : "amd64";
  return { os: Deno.build.os === "darwin" ? "linux" : Deno.build.os, architecture };
}

/** `os/arch[/variant]`. */
export function formatPlatform(platform: Platform): string {
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join("/");
}

/** The index entry for a platform (an exact variant match first), if any. */
export function selectPlatform(entries: Descriptor[], wanted: Platform): Descriptor | undefined {
  const matches = entries.filter((entry) => {
    const p = entry.platform as Partial<Platform> | undefined;
    return p?.os === wanted.os && p.architecture === wanted.architecture &&
      (wanted.variant === undefined || p.variant === wanted.variant);
  });
  return matches.find((m) => (m.platform as Partial<Platform>).variant === wanted.variant) ??
    matches[0];
}
