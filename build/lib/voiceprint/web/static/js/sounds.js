// Similar sounds: choose a library, search by example, play hits, add files.

import { ApiError, get, getBlob, postForm } from "./api.js";
import { clipPicker } from "./clips.js";
import { announce, h, replace } from "./dom.js";
import { score, seconds, tagList } from "./format.js";
import { withBusy } from "./forms.js";

export function initSounds() {
  const searchForm = document.getElementById("sound-search");
  const uploadForm = document.getElementById("sound-upload");
  const select = document.getElementById("sound-library");
  const libraryChoices = document.getElementById("library-choices");
  const results = document.getElementById("sound-results");
  const queryPicker = clipPicker(searchForm.querySelector('[data-picker="sound-query"]'));
  const uploadPicker = clipPicker(uploadForm.querySelector('[data-picker="sound-upload"]'));
  let audioUrls = [];

  async function loadLibraries(selected = select.value) {
    try {
      const libraries = await get("/sounds/libraries");
      if (!libraries.length) {
        replace(select, h("option", { value: "" }, "No libraries yet: add sounds first"));
      } else {
        replace(select, libraries.map((lib) => h("option", { value: lib.name, selected: lib.name === selected },
          `${lib.name} (${lib.sounds} sound${lib.sounds === 1 ? "" : "s"})`)));
      }
      replace(libraryChoices, libraries.map((lib) => h("option", { value: lib.name })));
    } catch (error) {
      announce(searchForm.querySelector(".form-status"), error.message, "error");
    }
  }

  document.getElementById("sound-libraries-refresh").addEventListener("click", () => loadLibraries());

  // -- search ----------------------------------------------------------------
  function revokeAudio() {
    for (const u of audioUrls) URL.revokeObjectURL(u);
    audioUrls = [];
  }

  function playButton(hit) {
    const button = h("button", { type: "button", class: "play-button", "aria-label": `Play ${hit.name}` }, "▶ Play");
    button.addEventListener("click", async () => {
      button.disabled = true;
      button.textContent = "Loading…";
      try {
        const blob = await getBlob(hit.audio_url);
        const url = URL.createObjectURL(blob);
        audioUrls.push(url);
        const audio = h("audio", { controls: true, src: url, "aria-label": `${hit.name} audio` });
        button.replaceWith(audio);
        audio.focus();
        await audio.play().catch(() => {}); // autoplay may be refused; the controls remain
      } catch (error) {
        button.disabled = false;
        button.textContent = "▶ Play";
        button.after(h("span", { class: "error" }, ` ${error.message}`));
      }
    });
    return button;
  }

  function tagsOf(tags) {
    const entries = Object.entries(tags || {});
    if (!entries.length) return null;
    return h("ul", { class: "tags", "aria-label": "Tags" }, entries.map(([k, v]) => h("li", {}, `${k}: ${v}`)));
  }

  function renderResults(r) {
    revokeAudio();
    const duplicate = r.query && r.query.duplicate_of
      ? h("p", { class: "notice" }, `This exact file is already in the library (sound #${r.query.duplicate_of}).`)
      : null;
    if (!r.results.length) {
      replace(results, duplicate, h("p", { class: "hint" }, "No sound matched."));
      return;
    }
    replace(results, duplicate,
      h("p", { class: "hint" }, `${r.results.length} most similar in ${r.library}, best first. Score: ${r.score_scale}.`),
      h("ol", { class: "hits" }, r.results.map((hit) => h("li", { class: "hit", "data-sound-id": hit.id },
        h("div", { class: "hit-head" },
          h("strong", { class: "hit-name" }, hit.name),
          h("span", { class: "hit-score" }, `score ${score(hit.score)}`),
          h("meter", { min: "-1", max: "1", value: String(hit.score), "aria-label": `Score of ${hit.name}` })),
        h("p", { class: "hit-meta" }, `${seconds(hit.duration_s)} · ${hit.format} · ${hit.sample_rate} Hz` +
          (hit.filename && hit.filename !== hit.name ? ` · ${hit.filename}` : "")),
        tagsOf(hit.tags), playButton(hit)))));
  }

  searchForm.addEventListener("submit", (event) => {
    event.preventDefault();
    withBusy(searchForm, async (fs) => {
      if (queryPicker.isRecording()) return fs.message("Stop the recording first.", "error");
      const [item] = queryPicker.items();
      if (!item) return fs.message("Choose, drop or record an example sound first.", "error");
      if (!select.value) return fs.message("There is no library to search yet: add sounds first.", "error");
      const body = new FormData();
      body.append("clip", item.file, item.name);
      body.append("library", select.value);
      const topK = searchForm.elements.top_k.value.trim();
      if (topK) body.append("top_k", topK);
      for (const tag of tagList(searchForm.elements.tag.value)) body.append("tag", tag);
      results.replaceChildren();
      fs.start();
      const r = await postForm("/sounds/search", body, { onUploadProgress: fs.progress, onUploaded: () => fs.uploaded() });
      renderResults(r);
      fs.done(`${r.results.length} result${r.results.length === 1 ? "" : "s"}.`);
    });
  });

  // -- upload ----------------------------------------------------------------
  function showOutcomes(sent, outcome) {
    for (const item of outcome.inserted || []) {
      uploadPicker.setOutcome(sent[item.index], "accepted", `Added as sound #${item.id} (${item.name})`);
    }
    for (const item of outcome.duplicates || []) {
      const original = item.duplicate_of && item.duplicate_of.name ? ` (${item.duplicate_of.name})` : "";
      uploadPicker.setOutcome(sent[item.index], "info", `Already in the library as sound #${item.id}${original}`);
    }
    for (const item of outcome.rejected || []) {
      uploadPicker.setOutcome(sent[item.index], "rejected", "Rejected",
        (item.reasons || []).map((r) => r.message || r.reason));
    }
  }

  uploadForm.addEventListener("submit", (event) => {
    event.preventDefault();
    withBusy(uploadForm, async (fs) => {
      if (uploadPicker.isRecording()) return fs.message("Stop the recording first.", "error");
      const sent = uploadPicker.items().filter((item) => item.kind !== "accepted" && item.kind !== "info");
      if (!sent.length) return fs.message("Add sound files first (drop, choose or record).", "error");
      const library = uploadForm.elements.library.value.trim() || "default";
      const body = new FormData();
      for (const item of sent) body.append("files", item.file, item.name);
      body.append("library", library);
      for (const tag of tagList(uploadForm.elements.tag.value)) body.append("tag", tag);
      fs.start(`Uploading ${sent.length} file${sent.length === 1 ? "" : "s"}…`);
      let r;
      try {
        r = await postForm("/sounds", body,
          { onUploadProgress: fs.progress, onUploaded: () => fs.uploaded("Uploaded; decoding and embedding…") });
      } catch (error) {
        if (error instanceof ApiError && Array.isArray(error.errors.files)) {
          showOutcomes(sent, { rejected: error.errors.files });
        }
        throw error;
      }
      showOutcomes(sent, r);
      const parts = [`${r.inserted.length} added`];
      if (r.duplicates.length) parts.push(`${r.duplicates.length} already there`);
      if (r.rejected.length) parts.push(`${r.rejected.length} rejected`);
      fs.done(`${parts.join(", ")} (library ${r.library}).`, r.rejected.length ? "info" : "success");
      await loadLibraries(r.library);
    });
  });

  return { loadLibraries };
}
