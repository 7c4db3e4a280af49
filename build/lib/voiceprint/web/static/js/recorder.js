// Microphone capture with the Web Audio API, encoded to WAV in the page.
//
// Browser echo cancellation, noise suppression and gain control are turned
// off: they change the voice the speaker model hears.

import { encodeWav, joinChunks } from "./wav.js";

const WORKLET_URL = new URL("./recorder-worklet.js", import.meta.url);

/** Why recording is impossible here, or null when it should work. */
export function recordingUnavailable() {
  if (!window.isSecureContext) {
    return "Recording needs a secure page (https:// or http://localhost); upload a file instead.";
  }
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return "This browser cannot record audio; upload a file instead.";
  }
  if (typeof AudioWorkletNode === "undefined") {
    return "This browser lacks AudioWorklet; upload a file instead.";
  }
  return null;
}

export class Recorder {
  /** onLevel(rms in [0, 1], seconds recorded) is called about 20 times a second. */
  constructor({ onLevel } = {}) {
    this.onLevel = onLevel;
    this.chunks = [];
    this.frames = 0;
    this.context = null;
    this.stream = null;
    this.lastLevelAt = 0;
  }

  get seconds() {
    return this.context ? this.frames / this.context.sampleRate : 0;
  }

  async start() {
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
    try {
      this.context = new AudioContext();
      await this.context.audioWorklet.addModule(WORKLET_URL);
      const source = this.context.createMediaStreamSource(this.stream);
      const node = new AudioWorkletNode(this.context, "pcm-capture");
      const mute = this.context.createGain();
      mute.gain.value = 0; // keeps the graph pulled without playing the microphone back
      node.port.onmessage = (event) => this.push(event.data);
      source.connect(node).connect(mute).connect(this.context.destination);
      if (this.context.state === "suspended") await this.context.resume();
    } catch (error) {
      this.release();
      throw error;
    }
  }

  push(chunk) {
    this.chunks.push(chunk);
    this.frames += chunk.length;
    const now = performance.now();
    if (this.onLevel && now - this.lastLevelAt > 50) {
      this.lastLevelAt = now;
      let sum = 0;
      for (let i = 0; i < chunk.length; i++) sum += chunk[i] * chunk[i];
      this.onLevel(Math.sqrt(sum / chunk.length), this.seconds);
    }
  }

  /** Stop and return {blob: WAV, seconds}. */
  async stop() {
    const rate = this.context ? this.context.sampleRate : 48000;
    const samples = joinChunks(this.chunks);
    this.release();
    return { blob: encodeWav(samples, rate), seconds: samples.length / rate };
  }

  release() {
    if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
    if (this.context) this.context.close().catch(() => {});
    this.stream = null;
    this.context = null;
  }
}
