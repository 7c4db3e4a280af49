// Identify (1:N) and verify (1:1): forms and how their answers are shown.

import { postForm } from "./api.js";
import { scoreChart } from "./chart.js";
import { clipPicker } from "./clips.js";
import { h, replace } from "./dom.js";
import { percent, score, seconds, signed } from "./format.js";
import { formState, withBusy } from "./forms.js";

export function candidateLabel(c) {
  return c.name ? `${c.name} (${c.external_id})` : c.external_id;
}

function isCosine(result) {
  return !result.operating_point || result.operating_point.normalization !== "asnorm";
}

/** "1.0% (at most 2.3% with 95% confidence)" from expected_far and far_upper_NN. */
export function farText(op) {
  const far = percent(op.expected_far);
  if (far === null) {
    return op.calibrated ? "not reported" : "not measured (no calibration yet)";
  }
  const bounds = Object.keys(op)
    .map((k) => /^far_upper_(\d+)$/.exec(k))
    .filter((m) => m && Number.isFinite(op[m[0]]))
    .map((m) => `at most ${percent(op[m[0]])} with ${m[1]}% confidence`);
  if (bounds.length) return `${far} (${bounds.join("; ")})`;
  // with no bound, a rate measured as zero on a small calibration says little
  return op.expected_far === 0 ? `${far} measured at calibration (a small calibration set can hide a higher rate)` : far;
}

function operatingPointFacts(op, scoreScale) {
  const facts = [
    ["Operating point", `${op.name} — ${op.calibrated ? "calibrated" : `not calibrated (${op.source || "default"})`}`],
    ["Threshold", `${score(op.threshold)} (accept when score ≥ threshold)`],
    ["Expected false accepts", farText(op)],
  ];
  const frr = percent(op.expected_frr);
  if (frr !== null) facts.push(["Expected false rejects", frr]);
  if (op.normalization && op.normalization !== "none") facts.push(["Score normalisation", op.normalization]);
  if (scoreScale) facts.push(["Score scale", scoreScale]);
  return facts;
}

/** Room for a chart in `container` (its figure has about 1.6 rem of padding and border). */
function chartWidth(container) {
  const width = container.clientWidth || (container.parentElement && container.parentElement.clientWidth);
  return width ? width - 28 : undefined;
}

function factList(facts) {
  return h("dl", { class: "facts" }, facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function queryFact(query) {
  if (!query) return [];
  return [["Clip", `${seconds(query.duration_s)} long, ${seconds(query.speech_seconds)} of speech`]];
}

export function renderIdentification(container, r) {
  const op = r.operating_point || {};
  const best = r.candidates && r.candidates[0];
  let headline;
  let detail;
  if (r.decision === "identified" && r.speaker) {
    headline = `Identified: ${candidateLabel(r.speaker)}`;
    detail = `Score ${score(r.speaker.score)}, threshold ${score(op.threshold)}.`;
  } else if (r.decision === "no_speakers") {
    headline = "No speakers are enrolled yet";
    detail = "Enroll speakers under Speakers first.";
  } else {
    headline = "Unknown speaker";
    detail = best
      ? `Nobody scored at or above the threshold ${score(op.threshold)}; the closest was ${candidateLabel(best)} at ${score(best.score)}.`
      : `Nobody scored at or above the threshold ${score(op.threshold)}.`;
  }
  const facts = [
    ["Margin over the runner-up", Number.isFinite(r.margin) ? score(r.margin) : "— (one candidate)"],
    ...operatingPointFacts(op, r.score_scale),
    ...queryFact(r.query),
  ];
  replace(container,
    h("div", { class: `decision ${r.decision}`, "data-decision": r.decision,
      "data-speaker": r.speaker ? r.speaker.external_id : null },
    h("p", { class: "headline" }, headline), h("p", {}, detail)),
    r.candidates && r.candidates.length
      ? h("figure", { class: "chart" },
        scoreChart({ bars: r.candidates.map((c) => ({ label: candidateLabel(c), score: c.score })),
          threshold: op.threshold, cosine: isCosine(r), title: "Candidate scores", width: chartWidth(container) }),
        h("figcaption", {}, `Candidates, best first. Dashed line: the threshold of operating point ${op.name}.`))
      : null,
    factList(facts));
}

export function renderVerification(container, r) {
  const op = r.operating_point || {};
  const who = candidateLabel(r.speaker);
  const headline = r.accepted ? `Accepted: this is ${who}` : `Rejected: not ${who}`;
  replace(container,
    h("div", { class: `decision ${r.accepted ? "accepted" : "rejected"}`,
      "data-decision": r.accepted ? "accepted" : "rejected", "data-speaker": r.speaker.external_id },
    h("p", { class: "headline" }, headline),
    h("p", {}, `Score ${score(r.score)}, ${signed(r.score - r.threshold)} from the threshold ${score(r.threshold)}.`)),
    h("figure", { class: "chart" },
      scoreChart({ bars: [{ label: who, score: r.score }], threshold: r.threshold, cosine: isCosine(r),
        title: "Verification score", width: chartWidth(container) }),
      h("figcaption", {}, `Dashed line: the threshold of operating point ${op.name}.`)),
    factList([["Margin to the threshold", signed(r.score - r.threshold)],
      ...operatingPointFacts(op, r.score_scale), ...queryFact(r.query)]));
}

function clipOrComplain(picker, state) {
  if (picker.isRecording()) {
    state.message("Stop the recording first.", "error");
    return null;
  }
  const [item] = picker.items();
  if (!item) state.message("Choose, drop or record a clip first.", "error");
  return item || null;
}

async function submitRecognition(form, picker, path, fields, render, resultEl) {
  await withBusy(form, async (state) => {
    const item = clipOrComplain(picker, state);
    if (!item) return;
    const body = new FormData();
    body.append("clip", item.file, item.name);
    for (const [k, v] of Object.entries(fields)) if (v !== "" && v !== null) body.append(k, v);
    resultEl.replaceChildren();
    state.start();
    const result = await postForm(path, body, { onUploadProgress: state.progress, onUploaded: () => state.uploaded() });
    render(resultEl, result);
    state.done("Done.");
  });
}

export function initIdentify() {
  const form = document.getElementById("identify-form");
  const result = document.getElementById("identify-result");
  const picker = clipPicker(form.querySelector('[data-picker="identify"]'));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitRecognition(form, picker, "/identify", {
      top_k: form.elements.top_k.value.trim(),
      operating_point: form.elements.operating_point.value.trim(),
    }, renderIdentification, result);
  });
}

export function initVerify() {
  const form = document.getElementById("verify-form");
  const result = document.getElementById("verify-result");
  const picker = clipPicker(form.querySelector('[data-picker="verify"]'));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const externalId = form.elements.external_id.value.trim();
    if (!externalId) {
      formState(form).message("Enter the claimed speaker's external id.", "error");
      form.elements.external_id.focus();
      return;
    }
    submitRecognition(form, picker, "/verify", {
      external_id: externalId,
      operating_point: form.elements.operating_point.value.trim(),
    }, renderVerification, result);
  });
}
