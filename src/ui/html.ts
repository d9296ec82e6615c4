/**
 * HTML built by a tagged template that escapes every interpolated value unless it is already
 * {@link Html}: names, tags, annotations and labels come from users and are never trusted.
 *
 * @module
 */

/** A fragment of markup that is safe to insert as it is. */
export class Html {
  /** Wrap markup that is already safe (built by {@link markup} or a constant). */
  constructor(readonly text: string) {}

  /** The markup. */
  toString(): string {
    return this.text;
  }
}

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Escape text for an element's content or a quoted attribute value. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** A value a template may interpolate: nothing (`undefined`, `null`, `false`) renders nothing. */
export type Interpolated = Html | string | number | boolean | undefined | null | Interpolated[];

function render(value: Interpolated): string {
  if (value === undefined || value === null || value === false || value === true) return "";
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return value.map(render).join("");
  return escapeHtml(String(value));
}

/** Build markup: literal parts are kept, every value is escaped (arrays are joined). */
export function markup(strings: TemplateStringsArray, ...values: Interpolated[]): Html {
  let text = strings[0]!;
  for (let i = 0; i < values.length; i++) text += render(values[i]!) + strings[i + 1]!;
  return new Html(text);
}

/** Markup from a trusted constant (never from stored data). */
export function trusted(text: string): Html {
  return new Html(text);
}
