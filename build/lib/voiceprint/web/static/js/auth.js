// The API key dialog: asked for once, kept for this tab (sessionStorage).
//
// Opened (1) at start when GET /health says "auth": "required" and no key is
// stored, (2) whenever a request is answered 401/403 (showing the API's own
// message), (3) from the header's "Enter key" button.

import { apiKey, onKeyChange, setApiKey, setAuthHandler } from "./api.js";

let pending = null; // one dialog for all the requests waiting on a key

export function initAuth() {
  const dialog = document.getElementById("key-dialog");
  const form = document.getElementById("key-form");
  const input = document.getElementById("key-input");
  const message = document.getElementById("key-dialog-message");
  const state = document.getElementById("key-state");
  const change = document.getElementById("key-change");
  const forget = document.getElementById("key-forget");

  function showState(key) {
    state.textContent = key ? "API key set for this tab" : "No API key";
    change.textContent = key ? "Change key" : "Enter key";
    forget.hidden = !key;
  }

  /** Open the dialog; resolves true when a (new) key was saved. */
  function ask(text) {
    if (pending) {
      if (text) message.textContent = text;
      return pending;
    }
    message.textContent = text || "Enter the API key for this service.";
    message.classList.toggle("error", Boolean(text));
    input.value = "";
    pending = new Promise((resolve) => {
      dialog.addEventListener("close", () => {
        pending = null;
        const key = input.value.trim();
        input.value = "";
        if (dialog.returnValue === "save" && key) {
          setApiKey(key);
          resolve(true);
        } else {
          resolve(false);
        }
      }, { once: true });
    });
    dialog.returnValue = ""; // Escape keeps the previous value otherwise
    dialog.showModal();
    input.focus();
    return pending;
  }

  form.addEventListener("submit", (event) => {
    // Enter in the field submits without a submitter: treat it as "save"
    if (!event.submitter) {
      event.preventDefault();
      dialog.close("save");
    }
  });
  change.addEventListener("click", () => ask(null));
  forget.addEventListener("click", () => setApiKey(null));
  onKeyChange(showState);
  showState(apiKey());
  setAuthHandler((error) => ask(error.message));
  return { ask };
}
