// Pieces the views share: page headings that take focus, error and notice boxes, the copy-once token field.

import { h, uid } from "./dom.js";

/** The page's heading: it takes focus after navigation so keyboard and screen-reader users start there. */
export function heading(text, ...extra) {
  return h("h1", { tabindex: "-1", class: "page-title" }, text, ...extra);
}

export function focusHeading(root) {
  const target = root.querySelector("h1") || root;
  target.focus({ preventScroll: false });
}

/** An error in words, optionally with a retry button. role=alert so it is read out when it appears. */
export function errorBox(error, { retry, title } = {}) {
  const message = error && error.message ? error.message : String(error);
  return h("div", { class: "notice error", role: "alert" },
    h("p", null, title ? h("strong", null, title + " ") : null, message),
    retry ? h("button", { type: "button", class: "button", onclick: retry }, "Try again") : null);
}

export function okBox(...children) {
  return h("div", { class: "notice ok", role: "status" }, ...children);
}

/** A labelled stat for the summary grids. */
export function stat(label, value, hint) {
  return h("div", { class: "stat" },
    h("dt", null, label),
    h("dd", null, value, hint ? h("span", { class: "hint" }, hint) : null));
}

/**
 * A secret shown once: read-only field, Copy button, and a live "Copied" confirmation. The clipboard API
 * needs a secure context (https or localhost); elsewhere the field is selected and copied the old way.
 */
export function secretField(label, value) {
  const id = uid("secret");
  const status = h("span", { class: "copy-status", role: "status", "aria-live": "polite" });
  const input = h("input", { id, type: "text", readonly: true, value, class: "secret", spellcheck: "false", autocomplete: "off" });
  const button = h("button", {
    type: "button", class: "button", "aria-describedby": id,
    onclick: async () => {
      let copied = false;
      try {
        if (navigator.clipboard && window.isSecureContext) {
          await navigator.clipboard.writeText(value);
          copied = true;
        }
      } catch {
        copied = false;
      }
      if (!copied) {
        input.focus();
        input.select();
        try {
          copied = document.execCommand("copy");
        } catch {
          copied = false;
        }
      }
      status.textContent = copied ? "Copied to the clipboard." : "Select the text and copy it (Ctrl+C): the browser did not allow copying.";
    },
  }, "Copy");
  input.addEventListener("focus", () => input.select());
  return h("div", { class: "secret-field" },
    h("label", { for: id }, label),
    h("div", { class: "secret-row" }, input, button),
    status);
}

/** A small busy indicator for a region that loads. */
export function loading(text = "Loading…") {
  return h("p", { class: "loading", role: "status" }, text);
}

/** Sets the document title: "app.db · prod · Wayback". */
export function title(...parts) {
  document.title = [...parts.filter(Boolean), "Wayback"].join(" · ");
}

/**
 * Replaces a region's content (a periodic refresh) without losing the keyboard focus inside it: the element
 * with the same href or data-key gets the focus back.
 */
export function refreshInPlace(container, ...children) {
  const active = document.activeElement;
  let key = null;
  if (active && container.contains(active)) key = active.getAttribute("href") || active.dataset.key || null;
  container.replaceChildren(...children.flat().filter(Boolean));
  if (key) {
    const again = [...container.querySelectorAll("[href],[data-key]")]
      .find((el) => el.getAttribute("href") === key || el.dataset.key === key);
    if (again) again.focus({ preventScroll: true });
  }
}

/** Hands a downloaded file to the browser to save as `name`. */
export function saveBlob(blob, name) {
  const href = URL.createObjectURL(blob);
  const a = h("a", { href, download: name, class: "visually-hidden" }, name);
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 60000);
}
