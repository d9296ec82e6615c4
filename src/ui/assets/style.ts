/**
 * The UI's stylesheet (served at `/ui/-/style.css`): light and dark themes from the system
 * setting, readable on a phone, visible focus.
 *
 * @module
 */

/** The stylesheet. */
export const STYLE = `
:root {
  color-scheme: light dark;
  --bg: #ffffff; --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --soft: #f6f8fa;
  --link: #0550ae; --accent: #0969da; --danger: #b3261e; --danger-fg: #ffffff; --ok: #1a7f37;
  --focus: #0969da;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0d1117; --fg: #e6edf3; --muted: #9198a1; --line: #30363d; --soft: #161b22;
    --link: #6cb6ff; --accent: #4493f8; --danger: #f85149; --danger-fg: #0d1117; --ok: #3fb950;
    --focus: #6cb6ff;
  }
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body {
  margin: 0; background: var(--bg); color: var(--fg); line-height: 1.5;
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
}
a { color: var(--link); }
a:focus-visible, button:focus-visible, input:focus-visible, summary:focus-visible {
  outline: 3px solid var(--focus); outline-offset: 2px;
}
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; overflow-wrap: anywhere; }
.skip { position: absolute; left: -999px; }
.skip:focus { left: 1rem; top: 1rem; background: var(--bg); padding: .5rem; z-index: 1; }
.visually-hidden {
  position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0);
  white-space: nowrap;
}
header.top {
  display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: center; justify-content: space-between;
  padding: .75rem 1rem; border-bottom: 1px solid var(--line); background: var(--soft);
}
header.top .brand { font-weight: 700; font-size: 1.15rem; text-decoration: none; color: var(--fg); }
header.top .who { color: var(--muted); font-size: .9rem; }
main { max-width: 72rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.5rem; margin: .5rem 0 1rem; overflow-wrap: anywhere; }
h2 { font-size: 1.2rem; margin: 2rem 0 .75rem; }
h3 { font-size: 1rem; margin: 1.25rem 0 .5rem; }
nav.crumbs ol { list-style: none; padding: 0; margin: 0; display: flex; flex-wrap: wrap; gap: .25rem; }
nav.crumbs li + li::before { content: "/"; color: var(--muted); margin-right: .25rem; }
nav.crumbs li { overflow-wrap: anywhere; }
.table-wrap { overflow-x: auto; border: 1px solid var(--line); border-radius: 6px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .5rem .75rem; border-bottom: 1px solid var(--line); vertical-align: top; }
tbody tr:last-child > * { border-bottom: 0; }
th { background: var(--soft); font-weight: 600; white-space: nowrap; }
tbody th { background: none; white-space: normal; overflow-wrap: anywhere; }
th a { color: var(--fg); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td { overflow-wrap: anywhere; }
table.rows, table.rows thead, table.rows tbody { display: block; }
table.rows tr { display: grid; grid-template-columns: minmax(0, 1fr) 5rem 9.5rem; }
table.rows tbody tr { content-visibility: auto; contain-intrinsic-size: auto 2.6rem; }
.muted { color: var(--muted); }
.filter { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; margin: 0 0 .75rem; }
.filter input {
  flex: 1 1 14rem; min-width: 0; padding: .5rem .6rem; font: inherit; color: var(--fg);
  background: var(--bg); border: 1px solid var(--muted); border-radius: 6px;
}
button, .button {
  font: inherit; padding: .45rem .9rem; border-radius: 6px; border: 1px solid var(--line);
  background: var(--soft); color: var(--fg); cursor: pointer; text-decoration: none; display: inline-block;
}
button.danger, .button.danger { background: var(--danger); color: var(--danger-fg); border-color: var(--danger); }
button.copy { padding: .1rem .5rem; font-size: .8rem; margin-left: .4rem; vertical-align: middle; }
.pager { display: flex; gap: 1rem; justify-content: space-between; margin: 1rem 0; flex-wrap: wrap; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .35rem 1rem; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
@media (max-width: 40rem) {
  dl.facts { grid-template-columns: 1fr; }
  dl.facts dd { margin-bottom: .5rem; }
  th, td { padding: .4rem .5rem; }
  .hide-narrow { display: none; }
  table.rows tr { grid-template-columns: minmax(0, 1fr) 3.5rem 8rem; }
}
ul.plain { list-style: none; padding: 0; margin: 0; }
.commands code { display: inline-block; padding: .2rem .4rem; background: var(--soft); border-radius: 4px; overflow-wrap: anywhere; }
.commands li { margin: .35rem 0; }
.notice { padding: .6rem .8rem; border: 1px solid var(--ok); border-radius: 6px; margin: 0 0 1rem; }
.error { border-color: var(--danger); }
.badge { display: inline-block; font-size: .75rem; padding: 0 .4rem; border: 1px solid var(--line); border-radius: 999px; color: var(--muted); margin-left: .25rem; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; }
form.sign-out { display: inline; margin-left: .5rem; }
form.sign-out button { padding: .1rem .6rem; font-size: .85rem; }
form.sign-in { display: grid; gap: .35rem; max-width: 22rem; }
form.sign-in input {
  padding: .5rem .6rem; font: inherit; color: var(--fg); background: var(--bg);
  border: 1px solid var(--muted); border-radius: 6px; margin-bottom: .5rem;
}
form.sign-in button { justify-self: start; }
[hidden] { display: none !important; }
`;
