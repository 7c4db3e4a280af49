// 16-bit PCM WAV encoding of captured audio. The service decodes with
// libsndfile, which reads WAV but not MediaRecorder's webm/opus.

/** Concatenate Float32Array chunks. */
export function joinChunks(chunks) {
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const out = new Float32Array(total);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}

/**
 * Mono float samples in [-1, 1] at `sampleRate` Hz -> a WAV Blob
 * (RIFF, PCM, 16-bit little-endian, one channel). Values outside [-1, 1] are clipped.
 */
export function encodeWav(samples, sampleRate) {
  const rate = Math.round(sampleRate);
  const dataBytes = samples.length * 2;
  const buffer = new ArrayBuffer(44 + dataBytes);
  const view = new DataView(buffer);
  const ascii = (offset, text) => {
    for (let i = 0; i < text.length; i++) view.setUint8(offset + i, text.charCodeAt(i));
  };
  ascii(0, "RIFF");
  view.setUint32(4, 36 + dataBytes, true);
  ascii(8, "WAVE");
  ascii(12, "fmt ");
  view.setUint32(16, 16, true); // fmt chunk size
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, 1, true); // channels
  view.setUint32(24, rate, true);
  view.setUint32(28, rate * 2, true); // byte rate
  view.setUint16(32, 2, true); // block align
  view.setUint16(34, 16, true); // bits per sample
  ascii(36, "data");
  view.setUint32(40, dataBytes, true);
  for (let i = 0, offset = 44; i < samples.length; i++, offset += 2) {
    const x = Math.max(-1, Math.min(1, samples[i]));
    view.setInt16(offset, x < 0 ? Math.round(x * 0x8000) : Math.round(x * 0x7fff), true);
  }
  return new Blob([buffer], { type: "audio/wav" });
}
