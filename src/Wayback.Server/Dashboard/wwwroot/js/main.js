// The dashboard's entry point: session, hash routes, the banner for errors that concern the whole page.
//
// Routes:  #/                      clusters (admin) or the token's own cluster
//          #/c/CLUSTER             the cluster's databases (and, for the admin, its tokens)
//          #/c/CLUSTER/db/NAME     one database: history chart, restore, download

import * as api from "./api.js";
import { h, replace } from "./dom.js";
import { errorBox, focusHeading } from "./ui.js";
import { signInView } from "./views/signin.js";
import { clustersView } from "./views/clusters.js";
import { clusterView } from "./views/cluster.js";
import { databaseView } from "./views/database.js";

window.waybackStarted = true;

const main = document.getElementById("main");
const banner = document.getElementById("banner");
const sessionNav = document.getElementById("session");
const who = document.getElementById("who");
const crumbs = document.getElementById("crumbs");

const app = {
  /** {role: "admin"|"cluster", cluster} once signed in. */
  me: null,
  view: null,
  signInMessage: null,

  go(hash) {
    if (location.hash === hash) render();
    else location.hash = hash;
  },

  /** The breadcrumb trail: [{label, href}], the last one being the current page. */
  setCrumbs(items) {
    if (!items || items.length < 2) {
      crumbs.hidden = true;
      crumbs.replaceChildren();
      return;
    }
    crumbs.hidden = false;
    replace(crumbs, h("ol", null, items.map((item, i) =>
      h("li", null, i === items.length - 1
        ? h("span", { "aria-current": "page" }, item.label)
        : h("a", { href: item.href }, item.label)))));
  },

  /** A message across the top of the page (network trouble and the like); null clears it. */
  setBanner(error, retry) {
    if (!error) {
      banner.hidden = true;
      banner.replaceChildren();
      return;
    }
    banner.hidden = false;
    replace(banner, h("p", null, error.message || String(error)),
      retry ? h("button", { type: "button", class: "button", onclick: retry }, "Try again") : null);
  },

  signOut(message, { remember = false } = {}) {
    // Several requests refused at once sign out once, with the first reason.
    if (!api.session.token && !app.me) return;
    // After a refused token, signing in again returns to the page the user was on.
    app.afterSignIn = remember && location.hash && location.hash !== "#/signin" ? location.hash : null;
    api.session.token = null;
    app.me = null;
    app.signInMessage = message || null;
    app.go("#/signin");
  },
};

api.onUnauthorized((error) => app.signOut(error.message, { remember: true }));

document.getElementById("sign-out").addEventListener("click", () => app.signOut("You have signed out."));

// The skip link moves the focus; following its href would change the route.
document.querySelector(".skip-link").addEventListener("click", (e) => {
  e.preventDefault();
  main.focus();
  main.scrollIntoView();
});

function showSession() {
  if (!app.me) {
    sessionNav.hidden = true;
    return;
  }
  sessionNav.hidden = false;
  who.textContent = app.me.role === "admin" ? "Signed in as admin" : `Signed in to cluster ${app.me.cluster}`;
}

function parseRoute() {
  const path = decodeURIComponent(location.hash.replace(/^#/, "")).replace(/\/+$/, "") || "/";
  const parts = path.split("/").filter(Boolean);
  if (parts.length === 0) return { name: "home" };
  if (parts[0] === "signin" && parts.length === 1) return { name: "signin" };
  if (parts[0] === "c" && parts.length === 2) return { name: "cluster", cluster: parts[1] };
  if (parts[0] === "c" && parts.length === 4 && parts[2] === "db") return { name: "database", cluster: parts[1], db: parts[3] };
  return { name: "unknown", path };
}

let renderSeq = 0;

async function render() {
  const seq = ++renderSeq;
  if (app.view && app.view.dispose) app.view.dispose();
  app.view = null;
  app.setBanner(null);
  const route = parseRoute();

  if (!api.session.token || route.name === "signin") {
    if (route.name !== "signin" && !api.session.token) {
      // Remember where the user was going.
      app.afterSignIn = location.hash && location.hash !== "#/signin" ? location.hash : null;
    }
    app.me = null;
    showSession();
    app.setCrumbs(null);
    app.view = signInView(main, app, api.session.token ? null : app.signInMessage);
    app.view.focus();
    return;
  }

  if (!app.me) {
    try {
      app.me = await api.whoami();
    } catch (e) {
      if (seq !== renderSeq) return;
      if (e.kind === "unauthorized") return; // the handler signed out
      replace(main, h("h1", { tabindex: "-1" }, "Wayback"), errorBox(e, { retry: () => render() }));
      focusHeading(main);
      return;
    }
    if (seq !== renderSeq) return;
  }
  showSession();

  let view;
  switch (route.name) {
    case "home":
      if (app.me.role !== "admin") {
        location.replace(`#/c/${encodeURIComponent(app.me.cluster)}`);
        return;
      }
      view = clustersView(main, app);
      break;
    case "cluster":
      view = clusterView(main, app, route.cluster);
      break;
    case "database":
      view = databaseView(main, app, route.cluster, route.db);
      break;
    default:
      app.setCrumbs(null);
      replace(main, h("h1", { tabindex: "-1" }, "Page not found"),
        h("p", null, `There is no page at “${route.path}”. `, h("a", { href: "#/" }, "Go to the start page"), "."));
      view = null;
  }
  app.view = view;
  focusHeading(main);
}

window.addEventListener("hashchange", () => render());

// Anything a view failed to catch still ends up on the page in words.
window.addEventListener("unhandledrejection", (event) => {
  const e = event.reason;
  if (e && e.kind === "unauthorized") return;
  app.setBanner(e instanceof Error ? e : new Error(`Something went wrong: ${String(e)}`));
});
window.addEventListener("error", (event) => {
  if (event.error) app.setBanner(new Error(`Something went wrong in the page: ${event.error.message}. Reload to start again.`));
});

document.getElementById("loading")?.remove();
render();
