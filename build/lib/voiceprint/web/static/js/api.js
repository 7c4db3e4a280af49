// The service's HTTP API, as the page uses it.
//
// Every request carries `Authorization: Bearer <key>` when a key was entered
// (kept in sessionStorage: this tab only). A 401 or 403 answer hands the API's
// own message to the auth handler (the key dialog); when it yields a new key
// the request is sent again, otherwise the error goes back to the caller.
// Errors are ApiError with the API's `message` (JSON bodies: code, status,
// message, errors).

const KEY_STORAGE = "voiceprint.apiKey";

const baseMeta = document.querySelector('meta[name="voiceprint-api-base"]');
/** URL prefix of the API (the app's script root, "" at the site root). */
export const API_BASE = (baseMeta && baseMeta.content ? baseMeta.content : "").replace(/\/$/, "");

export class ApiError extends Error {
  constructor(status, message, body = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.body = body;
  }

  /** The `errors` object of the API's error body ({} when absent). */
  get errors() {
    return (this.body && typeof this.body === "object" && this.body.errors) || {};
  }
}

// -- the key -------------------------------------------------------------------
const keyListeners = new Set();

export function apiKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE) || null;
  } catch {
    return null; // storage disabled: behave as without a key
  }
}

export function setApiKey(key) {
  try {
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
  } catch {
    /* storage disabled */
  }
  for (const fn of keyListeners) fn(apiKey());
}

export function onKeyChange(fn) {
  keyListeners.add(fn);
}

let authHandler = null;

/** `handler(error) -> Promise<boolean>`: true when a new key should be tried. */
export function setAuthHandler(handler) {
  authHandler = handler;
}

// -- requests ------------------------------------------------------------------
function url(path, query) {
  const full = /^https?:/.test(path) || (API_BASE && path.startsWith(API_BASE + "/"))
    ? path : API_BASE + path;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) {
    if (v === null || v === undefined || v === "") continue;
    for (const item of Array.isArray(v) ? v : [v]) params.append(k, String(item));
  }
  const qs = params.toString();
  return qs ? `${full}?${qs}` : full;
}

function messageOf(status, statusText, body) {
  if (body && typeof body === "object" && typeof body.message === "string" && body.message) {
    return body.message;
  }
  if (status === 0) return "The service could not be reached (network error or the connection was refused).";
  return `The service answered ${status} ${statusText || ""}`.trim();
}

async function parseBody(xhr) {
  const type = xhr.getResponseHeader("Content-Type") || "";
  if (xhr.responseType === "blob") {
    if (xhr.status >= 200 && xhr.status < 300) return xhr.response;
    if (!type.includes("json") || !xhr.response) return null;
    try { return JSON.parse(await xhr.response.text()); } catch { return null; }
  }
  if (!xhr.responseText) return null;
  if (type.includes("json")) {
    try { return JSON.parse(xhr.responseText); } catch { return null; }
  }
  return xhr.responseText;
}

/**
 * One HTTP exchange through XMLHttpRequest (for upload progress events).
 * opts: query, json, form (FormData), responseType ("blob"),
 *       onUploadProgress(fraction or null), onUploaded().
 */
function send(method, path, opts) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url(path, opts.query));
    if (opts.responseType) xhr.responseType = opts.responseType;
    else xhr.setRequestHeader("Accept", "application/json");
    const key = apiKey();
    if (key) xhr.setRequestHeader("Authorization", `Bearer ${key}`);
    let body = null;
    if (opts.json !== undefined) {
      xhr.setRequestHeader("Content-Type", "application/json");
      body = JSON.stringify(opts.json);
    } else if (opts.form) {
      body = opts.form;
      if (opts.onUploadProgress) {
        xhr.upload.addEventListener("progress", (e) =>
          opts.onUploadProgress(e.lengthComputable && e.total ? e.loaded / e.total : null));
      }
      if (opts.onUploaded) xhr.upload.addEventListener("load", () => opts.onUploaded());
    }
    xhr.addEventListener("loadend", async () => {
      resolve({ status: xhr.status, statusText: xhr.statusText, body: await parseBody(xhr) });
    });
    xhr.send(body);
  });
}

/** Send a request; resolves with the parsed body of a 2xx answer, rejects with ApiError. */
export async function request(method, path, opts = {}) {
  for (;;) {
    const res = await send(method, path, opts);
    if (res.status >= 200 && res.status < 300) return res.body;
    const error = new ApiError(res.status, messageOf(res.status, res.statusText, res.body), res.body);
    if ((res.status === 401 || res.status === 403) && authHandler && (await authHandler(error))) {
      continue; // a new key was entered: try again with it
    }
    throw error;
  }
}

export const get = (path, query) => request("GET", path, { query });
export const postJson = (path, json) => request("POST", path, { json });
export const del = (path, query) => request("DELETE", path, { query });

/** POST multipart form data with upload progress. */
export function postForm(path, form, { onUploadProgress, onUploaded } = {}) {
  return request("POST", path, { form, onUploadProgress, onUploaded });
}

/** GET a file (e.g. a sound's audio) as a Blob, with the key; use URL.createObjectURL. */
export function getBlob(path) {
  return request("GET", path, { responseType: "blob" });
}

let specPromise = null;

/**
 * Whether the service's OpenAPI description lists query parameter `name` for
 * `method path` (features that newer services add; false when unsure).
 */
export async function hasQueryParameter(method, path, name) {
  if (!specPromise) specPromise = get("/openapi.json").catch(() => null);
  const spec = await specPromise;
  const op = spec && spec.paths && spec.paths[path] && spec.paths[path][method.toLowerCase()];
  return Boolean(op && (op.parameters || []).some((p) => p.in === "query" && p.name === name));
}
