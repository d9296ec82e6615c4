/**
 * Who a request comes from, for per-client limits and the access log: the peer's address, or,
 * when the peer is a trusted proxy (`limits.trustedProxies`), the address it names in
 * `X-Forwarded-For` (the last one no trusted proxy added).
 *
 * @module
 */

/** The client of a request that has no peer address (called in-process). */
export const LOCAL_CLIENT = "local";

/** A set of addresses and CIDR ranges (IPv4 and IPv6). */
export class AddressSet {
  readonly #ranges: { bytes: Uint8Array; bits: number }[] = [];

  /** Parse entries like `10.0.0.1`, `10.0.0.0/8`, `::1`, `fd00::/8`; throws on a bad one. */
  constructor(entries: readonly string[]) {
    for (const entry of entries) {
      const [address = "", prefix] = entry.trim().split("/", 2);
      const bytes = parseIp(address);
      const bits = prefix === undefined ? (bytes?.length ?? 0) * 8 : Number(prefix);
      if (!bytes || !/^\d{1,3}$/.test(String(bits)) || bits > bytes.length * 8) {
        throw new Error(`not an IP address or CIDR range: "${entry}"`);
      }
      this.#ranges.push({ bytes, bits });
    }
  }

  /** Whether the set is empty. */
  get empty(): boolean {
    return this.#ranges.length === 0;
  }

  /** Whether `address` is in the set. */
  has(address: string): boolean {
    const bytes = parseIp(address);
    if (!bytes) return false;
    return this.#ranges.some((range) => inRange(bytes, range.bytes, range.bits));
  }
}

/** The client address of a request from `peer` carrying `forwarded` (`X-Forwarded-For`). */
export function clientAddress(
  peer: string | undefined,
  forwarded: string | null,
  trusted: AddressSet,
): string {
  if (peer === undefined) return LOCAL_CLIENT;
  if (forwarded === null || trusted.empty || !trusted.has(peer)) return peer;
  const hops = forwarded.split(",").map((hop) => hop.trim()).filter((hop) => hop !== "");
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i]!;
    if (!parseIp(hop)) return peer;
    if (!trusted.has(hop)) return hop;
  }
  return hops[0] ?? peer;
}

/** The address of Deno's connection info, when it has one. */
export function peerOf(info: { remoteAddr?: Deno.Addr } | undefined): string | undefined {
  const addr = info?.remoteAddr;
  return addr && "hostname" in addr ? addr.hostname : undefined;
}

function inRange(address: Uint8Array, base: Uint8Array, bits: number): boolean {
  if (address.length !== base.length) return false;
  for (let i = 0; i < base.length && bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((address[i]! & mask) !== (base[i]! & mask)) return false;
  }
  return true;
}

/** Parse an IPv4 or IPv6 address (IPv4-mapped IPv6 becomes IPv4); `undefined` if invalid. */
export function parseIp(text: string): Uint8Array | undefined {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (v4) {
    const parts = v4.slice(1).map(Number);
    return parts.every((p) => p <= 255) ? Uint8Array.from(parts) : undefined;
  }
  let address = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  address = address.split("%", 1)[0]!;
  if (!/^[0-9a-fA-F:.]+$/.test(address) || !address.includes(":")) return undefined;
  const halves = address.split("::");
  if (halves.length > 2) return undefined;
  const groups = (half: string) => half === "" ? [] : half.split(":");
  const head = groups(halves[0]!);
  const tail = groups(halves[1] ?? "");
  let mapped: Uint8Array | undefined;
  const last = (halves.length === 2 ? tail : head).at(-1);
  if (last?.includes(".")) {
    mapped = parseIp(last);
    if (!mapped || mapped.length !== 4) return undefined;
    (halves.length === 2 ? tail : head).pop();
  }
  const width = 8 - (mapped ? 2 : 0);
  const fill = width - head.length - tail.length;
  if (halves.length === 1 ? fill !== 0 : fill < 1) return undefined;
  const all = [...head, ...Array(halves.length === 2 ? fill : 0).fill("0"), ...tail];
  const bytes = new Uint8Array(16);
  for (let i = 0; i < all.length; i++) {
    const group = all[i]!;
    if (!/^[0-9a-fA-F]{1,4}$/.test(group)) return undefined;
    const value = parseInt(group, 16);
    bytes[i * 2] = value >> 8;
    bytes[i * 2 + 1] = value & 0xff;
  }
  if (mapped) bytes.set(mapped, 12);
  const isMapped = bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff &&
    bytes[11] === 0xff;
  return isMapped ? bytes.slice(12) : bytes;
}
