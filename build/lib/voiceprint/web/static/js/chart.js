// Horizontal bar chart of scores with the decision threshold drawn on it (inline SVG).

import { s } from "./dom.js";
import { score as fmt } from "./format.js";

const MAX_WIDTH = 640;
const MIN_WIDTH = 300;
const VALUE_W = 56;
const ROW_H = 30;
const TOP = 30;
const AXIS_H = 26;

function niceStep(span) {
  const raw = span / 5;
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (raw <= m * power) return m * power;
  return 10 * power;
}

/**
 * Domain of the x axis. Cosine similarity lives in [-1, 1]: the axis runs to 1
 * so bars read as "how close to identical"; other scales (AS-norm) fit the data.
 */
export function domain(values, cosine) {
  const finite = values.filter(Number.isFinite);
  let lo = Math.min(0, ...finite);
  let hi = Math.max(...finite, cosine ? 1 : 0.1);
  if (cosine) {
    lo = Math.max(-1, Math.floor(lo * 10) / 10);
    hi = Math.min(1, Math.max(hi, 1));
  } else {
    const pad = (hi - lo) * 0.08;
    hi += pad;
    lo = lo < 0 ? lo - pad : lo;
  }
  if (hi - lo < 1e-9) hi = lo + 1;
  return [lo, hi];
}

function shorten(text, n = 24) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

/**
 * bars: [{label, score}] best first; threshold: number or null;
 * cosine: true when scores are cosine similarities; title: accessible summary;
 * width: CSS pixels available (the drawing scales to fit).
 */
export function scoreChart({ bars, threshold = null, cosine = true, title = "Scores", width = MAX_WIDTH }) {
  // drawn at about the container's width so that text keeps its size on a phone
  const WIDTH = Math.round(Math.max(MIN_WIDTH, Math.min(MAX_WIDTH, width || MAX_WIDTH)));
  const LABEL_W = Math.round(WIDTH * 0.3);
  const values = bars.map((b) => b.score).concat(Number.isFinite(threshold) ? [threshold] : []);
  const [lo, hi] = domain(values, cosine);
  const plotW = WIDTH - LABEL_W - VALUE_W;
  const x = (v) => LABEL_W + ((Math.min(hi, Math.max(lo, v)) - lo) / (hi - lo)) * plotW;
  const rowsH = Math.max(1, bars.length) * ROW_H;
  const height = TOP + rowsH + AXIS_H;
  const summary = `${title}: ${bars.map((b) => `${b.label} ${fmt(b.score)}`).join(", ")}` +
    (Number.isFinite(threshold) ? `; threshold ${fmt(threshold)}` : "");

  const svg = s("svg", { viewBox: `0 0 ${WIDTH} ${height}`, class: "score-chart", role: "img",
    "aria-label": summary, preserveAspectRatio: "xMinYMin meet" }, s("title", {}, summary));

  // grid and axis
  const step = niceStep(hi - lo);
  const axis = s("g", { class: "axis", "aria-hidden": "true" });
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + 1e-9; k++) {
    const t = k * step + 0; // + 0 turns -0 into 0
    const tx = x(t);
    axis.append(s("line", { x1: tx, x2: tx, y1: TOP - 4, y2: TOP + rowsH, class: "grid" }),
      s("text", { x: tx, y: TOP + rowsH + 18, "text-anchor": "middle" }, fmt(t).replace(/0+$/, "").replace(/\.$/, "")));
  }
  svg.append(axis);

  const zero = x(Math.min(hi, Math.max(lo, 0)));
  bars.forEach((bar, i) => {
    const y = TOP + i * ROW_H;
    const xv = x(bar.score);
    const kind = !Number.isFinite(threshold) ? "" : bar.score >= threshold ? " above" : " below";
    svg.append(s("g", { class: `bar-row${kind}`, "data-score": bar.score },
      s("text", { x: LABEL_W - 8, y: y + ROW_H / 2 + 5, "text-anchor": "end", class: "bar-label" },
        shorten(bar.label, Math.floor((LABEL_W - 12) / 8.5)), s("title", {}, bar.label)),
      s("rect", { x: Math.min(zero, xv), y: y + 5, width: Math.max(1, Math.abs(xv - zero)),
        height: ROW_H - 10, rx: 3, class: "bar" }),
      s("text", { x: LABEL_W + plotW + 8, y: y + ROW_H / 2 + 5, class: "bar-value" }, fmt(bar.score))));
  });

  if (Number.isFinite(threshold)) {
    const tx = x(threshold);
    const anchor = tx > WIDTH - VALUE_W - 40 ? "end" : tx < LABEL_W + 40 ? "start" : "middle";
    svg.append(s("g", { class: "threshold" },
      s("line", { x1: tx, x2: tx, y1: TOP - 8, y2: TOP + rowsH + 2 }),
      s("text", { x: tx, y: TOP - 12, "text-anchor": anchor }, `threshold ${fmt(threshold)}`)));
  }
  return svg;
}
