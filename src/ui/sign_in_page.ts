/**
 * The sign-in form (`/ui/-/sign-in`): user name and password, checked by berth as its Basic
 * auth and token endpoint check them; posts with the CSRF token and where to go back to.
 *
 * @module
 */
import { signInUrl, UI_ROOT } from "./format.ts";
import { type Html, markup } from "./html.ts";
import { page, type PageContext } from "./layout.ts";

/** What the form shows. */
export interface SignInView {
  /** The page to return to after signing in. */
  next: string;
  /** The CSRF token of the form. */
  token: string;
  /** The user name typed before, when the form comes back. */
  user?: string;
  /** Why the last attempt failed. */
  problem?: string;
}

/** Render the sign-in form. */
export function signInPage(ctx: PageContext, view: SignInView): Html {
  const body = markup`
    <h1>Sign in</h1>
    ${
    view.problem
      ? markup`
      <p class="notice error" role="alert" id="sign-in-problem">${view.problem}</p>
    `
      : ""
  }
    <form class="sign-in" method="post" action="${signInUrl()}">
      <input type="hidden" name="csrf" value="${view.token}">
      <input type="hidden" name="next" value="${view.next}">
      <label for="user">User name</label>
      <input id="user" name="user" type="text" autocomplete="username" required
        autocapitalize="none" spellcheck="false" value="${view.user ?? ""}"${
    view.problem ? markup` aria-describedby="sign-in-problem"` : ""
  }${view.user === undefined ? markup` autofocus` : ""}>
      <label for="password">Password</label>
      <input id="password" name="password" type="password" autocomplete="current-password"
        required${view.user === undefined ? "" : markup` autofocus`}>
      <button type="submit">Sign in</button>
    </form>
  `;
  return page(
    ctx,
    "Sign in",
    [{ label: "Repositories", href: UI_ROOT }, { label: "Sign in" }],
    body,
  );
}
