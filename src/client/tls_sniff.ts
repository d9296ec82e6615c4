/**
 * Whether a port speaks TLS, learned from the first bytes it answers to a TLS ClientHello: a TLS
 * server answers with a TLS record (a handshake, or an alert when it likes nothing offered), a
 * plain HTTP server with `HTTP/1.x 400`. With verification off a client tries HTTPS (port 443)
 * before plain HTTP (port 80) for a registry named without a port; that attempt loads
 * `node:https` (~50–90 ms here), which a plain-HTTP registry never needs.
 *
 * @module
 */

/** TLS record types a server may answer a ClientHello with: alert (21), handshake (22). */
const TLS_ALERT = 0x15;
const TLS_HANDSHAKE = 0x16;

/**
 * `true` when `host:port` answers a ClientHello with a TLS record, `false` when it answers with
 * plain HTTP, `undefined` when it cannot tell (refused, closed, silent for `timeoutMs`).
 */
export async function speaksTls(
  hostname: string,
  port: number,
  options: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<boolean | undefined> {
  // One deadline for connecting and answering: an unknown answer costs at most `timeoutMs`.
  const expired = Promise.withResolvers<undefined>();
  const timer = setTimeout(() => expired.resolve(undefined), options.timeoutMs ?? 1000);
  const connecting = Deno.connect({ hostname, port });
  const conn = await Promise.race([connecting, expired.promise]).catch(() => undefined);
  if (!conn) {
    clearTimeout(timer);
    connecting.then(closeQuietly, () => {});
    return undefined;
  }
  const close = () => closeQuietly(conn);
  expired.promise.then(close);
  options.signal?.addEventListener("abort", close, { once: true });
  try {
    let written = 0;
    const hello = clientHello(hostname);
    while (written < hello.byteLength) written += await conn.write(hello.subarray(written));
    const first = new Uint8Array(5);
    let got = 0;
    while (got < first.byteLength) {
      const n = await conn.read(first.subarray(got));
      if (n === null) break;
      got += n;
    }
    if (got === 0) return undefined;
    if (first[0] === TLS_ALERT || first[0] === TLS_HANDSHAKE) return got < 2 || first[1] === 3;
    return new TextDecoder().decode(first.subarray(0, got)).startsWith("HTTP/") ? false : undefined;
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", close);
    close();
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* already closed */ }
}

/**
 * A TLS 1.2/1.3 ClientHello with the usual cipher suites and groups. Its random starts with CR LF
 * so a line-reading plain HTTP server sees a (bad) request line at once and answers 400.
 */
export function clientHello(hostname: string): Uint8Array {
  const random = crypto.getRandomValues(new Uint8Array(32));
  random[0] = 0x0d;
  random[1] = 0x0a;
  const u16 = (n: number) => [(n >> 8) & 0xff, n & 0xff];
  const list16 = (values: number[]) => [...u16(values.length * 2), ...values.flatMap(u16)];
  const extension = (type: number, body: number[]) => [...u16(type), ...u16(body.length), ...body];
  const name = new TextEncoder().encode(hostname);
  const isIp = /^[\d.]+$/.test(hostname) || hostname.includes(":");
  const extensions = [
    ...(isIp ? [] : extension(0x0000, [...u16(name.length + 3), 0, ...u16(name.length), ...name])),
    ...extension(0x000a, list16([0x001d, 0x0017, 0x0018])), // groups: x25519, P-256, P-384
    ...extension(0x000b, [1, 0]), // point formats: uncompressed
    ...extension(0x000d, list16([0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601])),
    ...extension(0x002b, [4, 0x03, 0x04, 0x03, 0x03]), // versions: TLS 1.3, 1.2
  ];
  const suites = [0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0x009c];
  const body = [
    0x03,
    0x03,
    ...random,
    0, // no session id
    ...list16(suites),
    1,
    0, // compression: none
    ...u16(extensions.length),
    ...extensions,
  ];
  const handshake = [1, (body.length >> 16) & 0xff, ...u16(body.length), ...body];
  return new Uint8Array([TLS_HANDSHAKE, 0x03, 0x01, ...u16(handshake.length), ...handshake]);
}
