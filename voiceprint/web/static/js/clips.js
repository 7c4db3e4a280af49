// A clip picker: drop files, choose them, or record from the microphone.
// Each chosen clip is listed with a player, a remove button and room for the
// service's verdict on it (accepted / rejected with reasons).

import { h, replace } from "./dom.js";
import { bytes, seconds } from "./format.js";
import { Recorder, recordingUnavailable } from "./recorder.js";

let pickerCount = 0;

/**
 * Build the picker inside `root` (an element with data-label and optional
 * data-multiple="true"). Returns {items(), clear(), setOutcome(), onChange}.
 */
export function clipPicker(root) {
  const multiple = root.dataset.multiple === "true";
  const id = `picker-${++pickerCount}`;
  const items = []; // {file, name, li, url, outcome}
  let recorder = null;
  let recordings = 0;
  const api = { onChange: null };

  const input = h("input", {
    type: "file", id: `${id}-file`, accept: "audio/*,.wav,.flac,.ogg,.oga,.mp3,.m4a,.aiff,.aif",
    multiple, class: "file-input",
  });
  const recordButton = h("button", { type: "button", class: "record-button", "aria-pressed": "false" },
    "Record");
  const time = h("span", { class: "rec-time" }, "0.0 s");
  const meter = h("meter", { min: "0", max: "1", low: "0.05", high: "0.7", optimum: "0.3", value: "0",
    "aria-label": "Microphone level" });
  const recordingRow = h("div", { class: "recording", hidden: true }, h("span", { class: "rec-dot" }, "● Recording"),
    time, meter);
  const note = h("p", { class: "picker-note", role: "status", "aria-live": "polite" });
  const list = h("ul", { class: "clip-list", "aria-label": `${root.dataset.label || "Clips"} chosen` });
  const zone = h("div", { class: "drop-zone" },
    h("p", {}, multiple ? "Drop audio files here, or " : "Drop an audio file here, or "),
    h("div", { class: "inline" },
      h("label", { for: input.id, class: "file-label" }, multiple ? "Choose files" : "Choose a file"),
      input, recordButton));
  replace(root, h("fieldset", {}, h("legend", {}, root.dataset.label || "Audio"), zone, recordingRow, note, list));

  const blocked = recordingUnavailable();
  if (blocked) {
    recordButton.disabled = true;
    recordButton.title = blocked;
    note.textContent = blocked;
  }

  function changed() {
    if (api.onChange) api.onChange(items.length);
  }

  function add(file, name, knownSeconds = null) {
    if (!multiple) clear();
    const url = URL.createObjectURL(file);
    const audio = h("audio", { controls: true, preload: "metadata", src: url,
      "aria-label": `Play ${name}` });
    const meta = h("span", { class: "clip-meta" },
      knownSeconds !== null ? `${seconds(knownSeconds)} · ${bytes(file.size)}` : bytes(file.size));
    if (knownSeconds === null) {
      audio.addEventListener("loadedmetadata", () => {
        if (Number.isFinite(audio.duration)) meta.textContent = `${seconds(audio.duration)} · ${bytes(file.size)}`;
      });
    }
    const outcome = h("div", { class: "clip-outcome" });
    const item = { file, name, url, outcome, li: null };
    const remove = h("button", { type: "button", class: "link-button", "aria-label": `Remove ${name}`,
      onclick: () => removeItem(item) }, "Remove");
    item.li = h("li", { class: "clip", "data-clip-name": name },
      h("div", { class: "clip-head" }, h("span", { class: "clip-name" }, name), meta, remove),
      audio, outcome);
    items.push(item);
    list.append(item.li);
    changed();
  }

  function removeItem(item) {
    const i = items.indexOf(item);
    if (i < 0) return;
    items.splice(i, 1);
    URL.revokeObjectURL(item.url);
    item.li.remove();
    changed();
    recordButton.focus();
  }

  function clear() {
    for (const item of items.splice(0)) URL.revokeObjectURL(item.url);
    list.replaceChildren();
    changed();
  }

  function addFiles(files) {
    const chosen = Array.from(files || []);
    for (const file of multiple ? chosen : chosen.slice(0, 1)) add(file, file.name);
    if (!multiple && chosen.length > 1) note.textContent = "Only the first file is used here.";
  }

  input.addEventListener("change", () => {
    addFiles(input.files);
    input.value = ""; // choosing the same file again still fires "change"
  });

  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    addFiles(event.dataTransfer && event.dataTransfer.files);
  });

  recordButton.addEventListener("click", async () => {
    if (recorder) {
      const current = recorder;
      recorder = null;
      const { blob, seconds: length } = await current.stop();
      recordingRow.hidden = true;
      recordButton.textContent = "Record";
      recordButton.setAttribute("aria-pressed", "false");
      recordings += 1;
      const name = `recording-${recordings}.wav`;
      add(new File([blob], name, { type: "audio/wav" }), name, length);
      note.textContent = `Recorded ${seconds(length)} as ${name}.`;
      return;
    }
    recorder = new Recorder({
      onLevel: (level, secs) => {
        meter.value = Math.min(1, level * 4);
        time.textContent = seconds(secs);
      },
    });
    try {
      await recorder.start();
    } catch (error) {
      recorder = null;
      note.textContent = error && error.name === "NotAllowedError"
        ? "Microphone access was refused; allow it in the browser, or upload a file."
        : `Could not start recording: ${error && error.message ? error.message : error}`;
      return;
    }
    time.textContent = "0.0 s";
    recordingRow.hidden = false;
    recordButton.textContent = "Stop recording";
    recordButton.setAttribute("aria-pressed", "true");
    note.textContent = "Recording… press Stop recording when done.";
  });

  /** item: one of items(); kind: "accepted" | "rejected" | "info"; lines: detail lines. */
  function setOutcome(item, kind, text, lines = []) {
    if (!item || !item.li) return;
    item.kind = kind;
    item.li.dataset.outcome = kind;
    replace(item.outcome, h("p", { class: `verdict ${kind}` }, text),
      lines.length ? h("ul", { class: "reasons" }, lines.map((l) => h("li", {}, l))) : null);
  }

  Object.assign(api, {
    items: () => items.slice(),
    clear,
    setOutcome,
    isRecording: () => recorder !== null,
  });
  return api;
}
