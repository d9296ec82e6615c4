/**
 * The frame every UI page shares: document head, top bar (who is signed in), breadcrumbs, and
 * the main landmark.
 *
 * @module
 */
import { type Html, markup, trusted } from "./html.ts";
import { formatAge, SIGN_OUT_URL, signInUrl, UI_ROOT } from "./format.ts";

/** What every page needs to know about the request. */
export interface PageContext {
  /** The signed-in user, `undefined` when anonymous. */
  user?: string;
  /** Whether a sign-in link is offered (passwords are checked here and the caller is anonymous). */
  signIn: boolean;
  /** The sign-in link (back to this page afterwards). */
  signInHref?: string;
  /** For a user signed in by the form: the CSRF token of the sign-out button. */
  signOutToken?: string;
  /** The registry's host as clients reach it (for pull commands). */
  host: string;
  /** Now (for "2 hours ago"). */
  now: Date;
  /** The stylesheet, inlined (a constant; the page's CSP allows it by its hash). */
  style: string;
  /** URL of the script (versioned). */
  scriptUrl: string;
}

/** One breadcrumb: a label and its link (the last one is the current page). */
export interface Crumb {
  /** Text. */
  label: string;
  /** Link; absent for the current page. */
  href?: string;
}

/** A whole HTML document around `body`. */
export function page(ctx: PageContext, title: string, crumbs: Crumb[], body: Html): Html {
  return markup`
    <!DOCTYPE html>
    <html lang="en">
      <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="color-scheme" content="light dark">
        <title>${title} &middot; berth</title>
        <link rel="icon" href="data:,">
        <style>${trusted(ctx.style)}</style>
        <script src="${ctx.scriptUrl}" defer></script>
      </head>
      <body>
        <a class="skip" href="#main">Skip to content</a>
        <header class="top">
          <a class="brand" href="${UI_ROOT}">berth</a>
          <span class="who">${
    ctx.user !== undefined
      ? markup`
              Signed in as <strong>${ctx.user}</strong>${
        ctx.signOutToken === undefined ? "" : markup`
              <form class="sign-out" method="post" action="${SIGN_OUT_URL}">
                <input type="hidden" name="csrf" value="${ctx.signOutToken}">
                <button type="submit">Sign out</button>
              </form>
            `
      }
            `
      : ctx.signIn
      ? markup`
              <a href="${ctx.signInHref ?? signInUrl()}">Sign in</a>
            `
      : "Anonymous"
  }</span>
        </header>
        <main id="main">
          ${crumbs.length > 1 ? breadcrumbs(crumbs) : ""} ${body}
        </main>
      </body>
    </html>
  `;
}

function breadcrumbs(crumbs: Crumb[]): Html {
  return markup`
    <nav class="crumbs" aria-label="Breadcrumb">
      <ol>${
    crumbs.map((crumb) =>
      crumb.href === undefined
        ? markup`
            <li aria-current="page">${crumb.label}</li>
          `
        : markup`
            <li><a href="${crumb.href}">${crumb.label}</a></li>
          `
    )
  }</ol>
    </nav>
  `;
}

/** A `<time>` element: the age as text, the exact time in its title and `datetime`. */
export function timeElement(date: Date | undefined, now: Date): Html {
  if (!date) {
    return markup`
      <span class="muted">&ndash;</span>
    `;
  }
  const iso = date.toISOString();
  return markup`
    <time datetime="${iso}" title="${iso.slice(0, 19).replace("T", " ")} UTC">${
    formatAge(
      date,
      now,
    )
  }</time>
  `;
}
