/**
 * A small answer whose bytes are all at hand (a manifest, `/v2/`'s `{}`, a HEAD's headers):
 * status, header fields in order, and the body. Handlers on the hottest paths return one instead
 * of a `Response`: Deno's `Response` and `Headers` validate and copy each field, and writing them
 * out walks the fields through an iterator that sorts them (bench/README.md, where the
 * microseconds go). berth's server writes a reply straight from its fields
 * (src/http/response_writer.ts); anywhere a standard `Response` is wanted, {@link toResponse}.
 *
 * @module
 */

/** Header fields of a {@link Reply}, in order; names as given. */
export class ReplyHeaders {
  /** Names and values, in order. */
  readonly fields: [string, string][] = [];

  /** The first value of the field (names compared without case), or `null`. */
  get(name: string): string | null {
    const key = name.toLowerCase();
    for (const field of this.fields) if (field[0].toLowerCase() === key) return field[1];
    return null;
  }

  /** Add a field (no check for an existing one: callers add names no handler sets). */
  append(name: string, value: string): void {
    this.fields.push([name, value]);
  }

  /** Replace the field's values with one. */
  set(name: string, value: string): void {
    const key = name.toLowerCase();
    const index = this.fields.findIndex((field) => field[0].toLowerCase() === key);
    if (index < 0) return this.append(name, value);
    this.fields[index] = [name, value];
    for (let i = this.fields.length - 1; i > index; i--) {
      if (this.fields[i]![0].toLowerCase() === key) this.fields.splice(i, 1);
    }
  }
}

/** A status, header fields and a body in memory (`null`: none, as for HEAD). */
export class Reply {
  readonly status: number;
  readonly headers: ReplyHeaders = new ReplyHeaders();
  readonly body: Uint8Array | null;

  /** `headers` are taken in their order; give `Content-Length` for a HEAD's body-less reply. */
  constructor(status: number, headers: Record<string, string>, body: Uint8Array | null = null) {
    this.status = status;
    for (const name in headers) this.headers.fields.push([name, headers[name]!]);
    this.body = body;
  }

  /** The same answer as a standard `Response`. */
  toResponse(): Response {
    return new Response(this.body as Uint8Array<ArrayBuffer> | null, {
      status: this.status,
      headers: this.headers.fields,
    });
  }
}

/** An answer as a standard `Response`. */
export function toResponse(answer: Response | Reply): Response {
  return answer instanceof Reply ? answer.toResponse() : answer;
}
