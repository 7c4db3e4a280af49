// Speakers: search, paging, create, enrollment status, recordings, enroll, delete.

import { ApiError, del, get, hasQueryParameter, postForm, postJson } from "./api.js";
import { clipPicker } from "./clips.js";
import { announce, h, replace } from "./dom.js";
import { seconds } from "./format.js";
import { formState, withBusy } from "./forms.js";

const PAGE_SIZE = 20;

/**
 * "Enrolled · 12 s of speech, 4 recordings" or "Enrolling · 6.3 s of speech still
 * needed (…)"; `short` drops the details (for the table).
 */
export function enrollmentText(e, short = false) {
  if (!e) return "";
  const recordings = `${e.utterances} recording${e.utterances === 1 ? "" : "s"}`;
  if (e.status === "enrolled") {
    return short ? `Enrolled · ${recordings}` : `Enrolled · ${seconds(e.speech_seconds)} of speech, ${recordings}`;
  }
  const needed = `${seconds(e.remaining_speech_seconds)} of speech still needed`;
  return short ? needed
    : `Enrolling · ${needed} (${seconds(e.speech_seconds)} of ${seconds(e.required_speech_seconds)} so far, ${recordings})`;
}

function label(sp) {
  return sp.name ? `${sp.name} (${sp.external_id})` : sp.external_id;
}

export function initSpeakers({ onChange } = {}) {
  const table = document.querySelector("#speaker-table tbody");
  const pageText = document.getElementById("speaker-page");
  const prev = document.getElementById("speaker-prev");
  const next = document.getElementById("speaker-next");
  const listStatus = document.getElementById("speaker-list-status");
  const searchForm = document.getElementById("speaker-search");
  const searchNote = document.getElementById("speaker-search-note");
  const createForm = document.getElementById("speaker-create");
  const detail = document.getElementById("speaker-detail");
  const placeholder = document.getElementById("speaker-detail-placeholder");
  const detailTitle = document.getElementById("speaker-detail-title");
  const enrollmentEl = document.getElementById("speaker-enrollment");
  const utterancesEl = document.getElementById("speaker-utterances");
  const enrollForm = document.getElementById("enroll-form");
  const picker = clipPicker(enrollForm.querySelector('[data-picker="enroll"]'));
  const deleteButton = document.getElementById("speaker-delete");

  const state = { page: 1, total: 0, query: "", searchBy: null, current: null };

  // -- list ------------------------------------------------------------------
  async function fetchPage() {
    const query = { page: state.page, page_size: PAGE_SIZE };
    if (state.query) {
      // free-text search (external id or name) where the service offers it, else the exact id
      state.searchBy = (await hasQueryParameter("GET", "/speakers", "q")) ? "q" : "external_id";
      query[state.searchBy] = state.query;
    }
    return get("/speakers", query);
  }

  async function load() {
    try {
      const page = await fetchPage();
      state.total = page.total;
      renderRows(page.items);
      const pages = Math.max(1, Math.ceil(page.total / PAGE_SIZE));
      pageText.textContent = `Page ${state.page} of ${pages} · ${page.total} speaker${page.total === 1 ? "" : "s"}`;
      prev.disabled = state.page <= 1;
      next.disabled = state.page >= pages;
      searchNote.hidden = !(state.query && state.searchBy === "external_id");
      searchNote.textContent = "This service finds speakers by their exact external id.";
      if (listStatus.dataset.kind === "error") announce(listStatus, "");
    } catch (error) {
      announce(listStatus, error.message, "error");
    }
  }

  function renderRows(items) {
    if (!items.length) {
      replace(table, h("tr", {}, h("td", { colspan: "4", class: "empty" },
        state.query ? "No speaker matches." : "No speakers yet: create one below.")));
      return;
    }
    replace(table, items.map((sp) => h("tr", { "data-speaker-id": sp.id, "data-external-id": sp.external_id },
      h("td", { class: "id" }, h("button", { type: "button", class: "link-button", onclick: () => open(sp.id),
        "aria-label": `Open ${label(sp)}` }, sp.external_id)),
      h("td", {}, sp.name || ""),
      h("td", { class: `status ${sp.enrollment ? sp.enrollment.status : ""}` }, enrollmentText(sp.enrollment, true)),
      h("td", {}, h("button", { type: "button", class: "link-button danger",
        "aria-label": `Delete ${label(sp)}`, onclick: () => remove(sp) }, "Delete")))));
  }

  prev.addEventListener("click", () => { state.page -= 1; load(); });
  next.addEventListener("click", () => { state.page += 1; load(); });
  searchForm.addEventListener("submit", (event) => {
    event.preventDefault();
    state.query = searchForm.elements.q.value.trim();
    state.page = 1;
    load();
  });

  // -- create ----------------------------------------------------------------
  createForm.addEventListener("submit", (event) => {
    event.preventDefault();
    withBusy(createForm, async (fs) => {
      const externalId = createForm.elements.external_id.value.trim();
      if (!externalId) {
        fs.message("Enter an external id.", "error");
        createForm.elements.external_id.focus();
        return;
      }
      const name = createForm.elements.name.value.trim();
      fs.start("Creating…");
      const sp = await postJson("/speakers", { external_id: externalId, ...(name ? { name } : {}) });
      createForm.reset();
      fs.done(`Created ${label(sp)}. Add speech to enroll them.`);
      await load();
      if (onChange) onChange();
      await open(sp.id);
    });
  });

  // -- detail ----------------------------------------------------------------
  function showEnrollment(e) {
    enrollmentEl.textContent = enrollmentText(e);
    enrollmentEl.dataset.status = e ? e.status : "";
  }

  async function open(id) {
    try {
      const sp = await get(`/speakers/${id}`);
      state.current = sp;
      detailTitle.textContent = label(sp);
      detail.dataset.speakerId = sp.id;
      showEnrollment(sp.enrollment);
      picker.clear();
      formState(enrollForm).done("", "info");
      detail.hidden = false;
      placeholder.hidden = true;
      detailTitle.focus();
      await loadUtterances(sp);
    } catch (error) {
      announce(listStatus, error.message, "error");
    }
  }

  async function loadUtterances(sp) {
    replace(utterancesEl, h("p", { class: "hint" }, "Loading…"));
    try {
      const page = await get(`/speakers/${sp.id}/utterances`);
      if (!page.items.length) {
        replace(utterancesEl, h("p", { class: "hint" }, "No recordings yet."));
        return;
      }
      replace(utterancesEl, h("div", { class: "table-wrap" }, h("table", { class: "utterances" },
        h("caption", { class: "visually-hidden" }, `Recordings of ${label(sp)}`),
        h("thead", {}, h("tr", {}, ["File", "Length", "Speech", "Added"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, page.items.map((u) => h("tr", {},
          h("td", {}, u.filename || `#${u.id}`), h("td", {}, seconds(u.duration_s)),
          h("td", {}, seconds(u.speech_seconds)),
          h("td", {}, u.created_at ? new Date(u.created_at).toLocaleString() : "")))))),
      page.total > page.items.length ? h("p", { class: "hint" }, `${page.items.length} of ${page.total} shown.`) : null);
    } catch (error) {
      if (error instanceof ApiError && (error.status === 404 || error.status === 405)) {
        const n = sp.enrollment ? sp.enrollment.utterances : 0;
        replace(utterancesEl, h("p", { class: "hint", "data-degraded": "true" },
          `${n} recording${n === 1 ? "" : "s"} enrolled (this service does not list them individually).`));
      } else {
        replace(utterancesEl, h("p", { class: "error" }, error.message));
      }
    }
  }

  function outcomeLines(clip) {
    return (clip.reasons || []).map((r) => r.message || r.reason);
  }

  enrollForm.addEventListener("submit", (event) => {
    event.preventDefault();
    withBusy(enrollForm, async (fs) => {
      const sp = state.current;
      if (picker.isRecording()) return fs.message("Stop the recording first.", "error");
      const pending = picker.items().filter((item) => item.kind !== "accepted");
      if (!pending.length) return fs.message("Add clips first (drop, choose or record).", "error");
      const body = new FormData();
      for (const item of pending) body.append("clips", item.file, item.name);
      fs.start(`Uploading ${pending.length} clip${pending.length === 1 ? "" : "s"}…`);
      let result;
      try {
        result = await postForm(`/speakers/${sp.id}/enrollments`, body,
          { onUploadProgress: fs.progress, onUploaded: () => fs.uploaded("Uploaded; checking and embedding the clips…") });
      } catch (error) {
        if (error instanceof ApiError && error.status === 422 && Array.isArray(error.errors.clips)) {
          for (const clip of error.errors.clips) {
            picker.setOutcome(pending[clip.index], "rejected", "Rejected", outcomeLines(clip));
          }
          if (error.errors.enrollment) showEnrollment(error.errors.enrollment);
        }
        throw error;
      }
      for (const clip of result.accepted) {
        picker.setOutcome(pending[clip.index], "accepted", `Accepted · ${seconds(clip.speech_seconds)} of speech`);
      }
      for (const clip of result.rejected) {
        picker.setOutcome(pending[clip.index], "rejected", "Rejected", outcomeLines(clip));
      }
      showEnrollment(result.enrollment);
      const n = result.accepted.length;
      const m = result.rejected.length;
      fs.done(`${n} clip${n === 1 ? "" : "s"} accepted${m ? `, ${m} rejected` : ""}. ${enrollmentText(result.enrollment)}.`,
        m ? "info" : "success");
      await Promise.all([load(), loadUtterances({ ...sp, enrollment: result.enrollment })]);
      if (onChange) onChange();
    });
  });

  // -- delete ----------------------------------------------------------------
  async function remove(sp) {
    if (!window.confirm(`Delete ${label(sp)} with all their recordings and voiceprint? This cannot be undone.`)) return;
    try {
      await del(`/speakers/${sp.id}`);
      if (state.current && state.current.id === sp.id) {
        detail.hidden = true;
        placeholder.hidden = false;
        state.current = null;
      }
      announce(listStatus, `Deleted ${label(sp)}.`, "success");
      await load();
      if (onChange) onChange();
    } catch (error) {
      announce(listStatus, error.message, "error");
    }
  }

  deleteButton.addEventListener("click", () => state.current && remove(state.current));

  return { load };
}

/** Fill the verify form's <datalist> with up to 500 external ids. */
export async function loadSpeakerChoices() {
  const list = document.getElementById("speaker-choices");
  try {
    const page = await get("/speakers", { page_size: 500 });
    replace(list, page.items.map((sp) => h("option", { value: sp.external_id }, sp.name || "")));
  } catch {
    /* the field still takes a typed id */
  }
}
