// Busy state, upload progress and messages for a form (status region + <progress>).

import { announce } from "./dom.js";

export function formState(form) {
  const status = form.querySelector(".form-status");
  const progress = form.querySelector(".upload-progress");
  const submit = form.querySelector('button[type="submit"]');

  return {
    start(text = "Uploading…") {
      form.setAttribute("aria-busy", "true");
      form.classList.add("busy");
      if (submit) submit.disabled = true;
      if (progress) {
        progress.hidden = false;
        progress.value = 0;
      }
      announce(status, text);
    },
    /** fraction in [0, 1], or null when the size is unknown */
    progress(fraction) {
      if (!progress) return;
      if (fraction === null) progress.removeAttribute("value");
      else progress.value = fraction;
    },
    uploaded(text = "Uploaded; the service is working…") {
      if (progress) progress.removeAttribute("value"); // indeterminate while the server works
      announce(status, text);
    },
    done(text = "", kind = "success") {
      form.removeAttribute("aria-busy");
      form.classList.remove("busy");
      if (submit) submit.disabled = false;
      if (progress) progress.hidden = true;
      announce(status, text, kind);
    },
    fail(error) {
      this.done(error && error.message ? error.message : String(error), "error");
    },
    message(text, kind = "info") {
      announce(status, text, kind);
    },
  };
}

/** Run `work(state)` with the form busy; errors end up in the form's status region. */
export async function withBusy(form, work) {
  const state = formState(form);
  try {
    return await work(state);
  } catch (error) {
    state.fail(error);
    return undefined;
  }
}
