// Number formatting for people. Scores keep their scale (see score_scale).

export function score(x) {
  return Number.isFinite(x) ? x.toFixed(3) : "–";
}

export function signed(x) {
  if (!Number.isFinite(x)) return "–";
  return (x >= 0 ? "+" : "−") + Math.abs(x).toFixed(3);
}

export function seconds(x) {
  if (!Number.isFinite(x)) return "–";
  return x < 10 ? `${x.toFixed(1)} s` : `${Math.round(x)} s`;
}

/** A rate in [0, 1] as a percentage with enough digits to be meaningful. */
export function percent(rate) {
  if (rate === null || rate === undefined || !Number.isFinite(rate)) return null;
  const p = rate * 100;
  if (p === 0) return "0%";
  const digits = p >= 10 ? 0 : p >= 1 ? 1 : p >= 0.1 ? 2 : 3;
  return `${p.toFixed(digits)}%`;
}

export function bytes(n) {
  if (!Number.isFinite(n)) return "";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** "key:value, key:value" -> ["key:value", ...] (empty parts dropped). */
export function tagList(text) {
  return String(text || "").split(",").map((t) => t.trim()).filter(Boolean);
}
