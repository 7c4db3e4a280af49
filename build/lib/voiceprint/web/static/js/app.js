// Entry point: views switched by the URL fragment (#identify, #verify,
// #speakers, #sounds), the API key flow and the service status line.

import { apiKey, get } from "./api.js";
import { initAuth } from "./auth.js";
import { initIdentify, initVerify } from "./recognition.js";
import { initSounds } from "./sounds.js";
import { initSpeakers, loadSpeakerChoices } from "./speakers.js";

const VIEWS = ["identify", "verify", "speakers", "sounds"];
const DEFAULT_VIEW = "identify";

function currentView() {
  const name = window.location.hash.replace(/^#/, "");
  return VIEWS.includes(name) ? name : DEFAULT_VIEW;
}

async function showHealth(auth) {
  const line = document.getElementById("service-health");
  try {
    const health = await get("/health");
    const parts = [`Service ${health.status}`, `speaker model ${health.speaker_encoder}`,
      `sound model ${health.sound_encoder}`];
    if (health.auth) parts.push(health.auth === "required" ? "API key required" : "no API key needed");
    line.textContent = parts.join(" · ");
    document.body.dataset.auth = health.auth || "unknown";
    if (health.auth === "required" && !apiKey()) {
      await auth.ask("This service needs an API key.");
    }
  } catch (error) {
    line.textContent = `Service status unavailable: ${error.message}`;
  }
}

function main() {
  const auth = initAuth();
  initIdentify();
  initVerify();
  const speakers = initSpeakers({ onChange: loadSpeakerChoices });
  const sounds = initSounds();
  const loaders = {
    identify: () => {},
    verify: loadSpeakerChoices,
    speakers: speakers.load,
    sounds: () => sounds.loadLibraries(),
  };

  function route(focus) {
    const view = currentView();
    for (const section of document.querySelectorAll("[data-view]")) {
      section.hidden = section.dataset.view !== view;
    }
    for (const link of document.querySelectorAll("[data-view-link]")) {
      if (link.dataset.viewLink === view) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    document.title = `${view[0].toUpperCase()}${view.slice(1)} · voiceprint`;
    if (focus) document.getElementById(`${view}-title`).focus();
    loaders[view]();
  }

  window.addEventListener("hashchange", () => route(true));
  route(false);
  document.body.dataset.ready = "true";
  showHealth(auth);
}

main();
