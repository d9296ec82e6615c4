/**
 * Formatting of the values the UI shows: sizes, digests, times, platforms, and the URLs of its
 * pages (each path segment encoded, so a link never leaves the UI).
 *
 * @module
 */

/** Root of the web UI. */
export const UI_ROOT = "/ui/";

const UNITS = ["B", "kB", "MB", "GB", "TB", "PB"];

/** A byte count as people read it (decimal units, as docker and podman print them). */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return "?";
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit++;
  }
  if (unit === 0) return `${bytes} B`;
  return `${value >= 100 ? value.toFixed(0) : value.toFixed(1)} ${UNITS[unit]}`;
}

/** A digest shortened to its algorithm and 12 hex digits (`sha256:0123456789ab`). */
export function shortDigest(digest: string): string {
  const colon = digest.indexOf(":");
  return colon < 0 ? digest.slice(0, 19) : digest.slice(0, colon + 13);
}

/** A time as `2026-12-02 20:23 UTC` (stable across locales and servers). */
export function formatTime(date: Date): string {
  const iso = date.toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
}

/** How long ago a time was, in the largest whole unit (`5 minutes ago`). */
export function formatAge(date: Date, now: Date): string {
  const seconds = Math.round((now.getTime() - date.getTime()) / 1000);
  if (seconds < 60) return "just now";
  const steps: [number, string][] = [[60, "minute"], [3600, "hour"], [86400, "day"]];
  let chosen: [number, string] = steps[0]!;
  for (const step of steps) if (seconds >= step[0]) chosen = step;
  if (seconds >= 86400 * 365) chosen = [86400 * 365, "year"];
  else if (seconds >= 86400 * 30) chosen = [86400 * 30, "month"];
  const count = Math.floor(seconds / chosen[0]);
  return `${count} ${chosen[1]}${count === 1 ? "" : "s"} ago`;
}

/** The platform of an index entry, as an OCI index describes it. */
export interface Platform {
  /** Operating system (`linux`). */
  os?: string;
  /** CPU architecture (`amd64`). */
  architecture?: string;
  /** CPU variant (`v8`). */
  variant?: string;
  /** OS version (Windows). */
  "os.version"?: string;
}

/** Read a platform object out of untrusted JSON (only string fields are kept). */
export function toPlatform(value: unknown): Platform | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const source = value as Record<string, unknown>;
  const platform: Platform = {};
  for (const key of ["os", "architecture", "variant", "os.version"] as const) {
    const field = source[key];
    if (typeof field === "string" && field !== "") platform[key] = field;
  }
  return Object.keys(platform).length === 0 ? undefined : platform;
}

/** A platform as `linux/arm64/v8` (`unknown` when it says nothing). */
export function platformLabel(platform: Platform | undefined): string {
  if (!platform) return "unknown";
  const parts = [platform.os ?? "?", platform.architecture ?? "?"];
  if (platform.variant) parts.push(platform.variant);
  const label = parts.join("/");
  return platform["os.version"] ? `${label} (${platform["os.version"]})` : label;
}

/** URL of the repository list (with its query). */
export function listUrl(query: Record<string, string | undefined> = {}): string {
  return UI_ROOT + queryString(query);
}

/** URL of a repository's page. */
export function repositoryUrl(
  name: string,
  query: Record<string, string | undefined> = {},
): string {
  return UI_ROOT + encodeName(name) + queryString(query);
}

/** URL of a manifest's page (by tag or digest). */
export function manifestUrl(name: string, reference: string): string {
  return `${UI_ROOT}${encodeName(name)}/-/manifest/${encodeURIComponent(reference)}`;
}

/** URL of the delete confirmation of a tag or digest. */
export function deleteUrl(name: string, reference: string): string {
  return `${UI_ROOT}${encodeName(name)}/-/delete/${encodeURIComponent(reference)}`;
}

function encodeName(name: string): string {
  return name.split("/").map(encodeURIComponent).join("/");
}

function queryString(query: Record<string, string | undefined>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== "") params.set(key, value);
  }
  const text = params.toString();
  return text === "" ? "" : `?${text}`;
}

/** URL of the sign-in form, coming back to `next` (a UI path) afterwards. */
export function signInUrl(next?: string): string {
  return `${UI_ROOT}-/sign-in${queryString({ next: next === UI_ROOT ? undefined : next })}`;
}

/** URL the sign-out form posts to. */
export const SIGN_OUT_URL = `${UI_ROOT}-/sign-out`;

/** `next` of the sign-in form as a UI path of this origin, or the list when it is not one. */
export function safeNext(next: string | null): string {
  if (next === null || !next.startsWith(UI_ROOT) || /[\\\r\n]/.test(next)) return UI_ROOT;
  try {
    const url = new URL(next, "http://berth.invalid");
    if (url.origin !== "http://berth.invalid" || !url.pathname.startsWith(UI_ROOT)) return UI_ROOT;
    return url.pathname + url.search;
  } catch {
    return UI_ROOT;
  }
}
