// Small DOM helpers. Text always goes in through textContent (never innerHTML),
// so names, file names and API messages cannot inject markup.

/**
 * Create an element: h("p", {class: "x", "data-id": 3, onclick: fn}, "text", child).
 * Attributes whose value is null, undefined or false are left out; true sets "".
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** Like h() for SVG elements. */
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Remove every child of `el` and append `children`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Put `text` in a live region; a repeated message is still announced. */
export function announce(region, text, kind = "info") {
  if (!region) return;
  region.textContent = "";
  region.classList.toggle("error", kind === "error");
  region.classList.toggle("success", kind === "success");
  // a new text node in a new task makes screen readers announce repeats too
  setTimeout(() => { region.textContent = text; }, 0);
  region.dataset.kind = kind;
  region.dataset.message = text;
}
