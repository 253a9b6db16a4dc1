// Sign in with a token. It is checked with GET /api/whoami before it is kept, and kept only in this tab's
// sessionStorage: closing the tab signs out.

import * as api from "../api.js";
import { h, replace } from "../dom.js";
import { errorBox, heading, title } from "../ui.js";

export function signInView(main, app, message) {
  title("Sign in");
  const error = h("div", { class: "form-error", "aria-live": "assertive" });
  const input = h("input", {
    id: "token", name: "token", type: "password", autocomplete: "off", spellcheck: "false", required: true,
    "aria-describedby": "token-help", autocapitalize: "off",
  });
  const show = h("input", { id: "show-token", type: "checkbox" });
  show.addEventListener("change", () => { input.type = show.checked ? "text" : "password"; });
  const submit = h("button", { type: "submit", class: "button primary" }, "Sign in");

  const form = h("form", { class: "card signin", novalidate: true },
    h("div", { class: "field" },
      h("label", { for: "token" }, "Token"),
      input,
      h("p", { id: "token-help", class: "help" },
        "A cluster token opens that cluster (", h("code", null, "wayback clusters create"), " and ",
        h("code", null, "wayback tokens create"), " print one). The admin token opens every cluster and can create clusters and tokens; ",
        h("code", null, "wayback serve"), " prints it on its first start and keeps it in ", h("code", null, "DATA/admin-token"), ".")),
    h("div", { class: "field checkbox" }, show, h("label", { for: "show-token" }, "Show the token")),
    error,
    h("div", { class: "actions" }, submit));

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const token = api.cleanToken(input.value);
    replace(error);
    if (!token) {
      replace(error, errorBox(new Error("Enter a token.")));
      input.focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = "Signing in…";
    try {
      const me = await api.whoami(token);
      api.session.token = token;
      app.me = me;
      app.signInMessage = null;
      const next = app.afterSignIn;
      app.afterSignIn = null;
      app.go(next || (me.role === "admin" ? "#/" : `#/c/${encodeURIComponent(me.cluster)}`));
    } catch (err) {
      const shown = err.kind === "unauthorized"
        ? new Error("The server did not accept this token: check that it is complete, and that it has not been revoked.")
        : err.kind === "notfound"
          ? new Error("This server has no dashboard API (GET /api/whoami answered 404): it is older than this page, or not a Wayback server.")
          : err;
      replace(error, errorBox(shown));
      submit.disabled = false;
      submit.textContent = "Sign in";
      input.focus();
    }
  });

  replace(main,
    h("div", { class: "narrow" },
      heading("Sign in to Wayback"),
      message ? h("div", { class: "notice info", role: "status" }, h("p", null, message)) : null,
      form));
  return { dispose() {}, focus: () => input.focus() };
}
