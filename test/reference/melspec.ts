// Float64 reference of the log-mel front end, written from the definitions (a direct
// O(n_fft²) DFT per frame, librosa's mel filter construction), independent of the
// engine's host tables:
//   torch.stft(x, n_fft, hop, window=hann_window(win, periodic), center=True,
//              pad_mode='reflect'|'constant')[..., :-1].abs()**2          (Whisper)
//   mel = librosa.filters.mel(sr, n_fft, n_mels, htk=?, norm='slaney'|None) @ power
//   log10(max(mel, 1e-10)), then optionally (max(x, max − 8) + 4) / 4
export interface RefMelOptions {
  sampleRate: number;
  nFft: number;
  winLength: number;
  hop: number;
  nMels: number;
  fMin: number;
  fMax: number;
  htk: boolean;
  slaneyNorm: boolean;
  reflect: boolean;
  whisperNorm: boolean;
}

export const WHISPER: RefMelOptions = {
  sampleRate: 16000,
  nFft: 400,
  winLength: 400,
  hop: 160,
  nMels: 80,
  fMin: 0,
  fMax: 8000,
  htk: false,
  slaneyNorm: true,
  reflect: true,
  whisperNorm: true,
};

export function hzToMel(f: number, htk: boolean): number {
  if (htk) return 2595 * Math.log10(1 + f / 700);
  // Slaney: linear below 1 kHz (3 mels per 200 Hz), logarithmic above.
  return f < 1000 ? (3 * f) / 200 : 15 + (27 * Math.log(f / 1000)) / Math.log(6.4);
}

export function melToHz(m: number, htk: boolean): number {
  if (htk) return 700 * (Math.pow(10, m / 2595) - 1);
  return m < 15 ? (200 * m) / 3 : 1000 * Math.pow(6.4, (m - 15) / 27);
}

/** Filter bank [nMels][nFft/2 + 1]. */
export function melFilters(o: RefMelOptions): number[][] {
  const nb = o.nFft / 2 + 1;
  const lo = hzToMel(o.fMin, o.htk);
  const hi = hzToMel(o.fMax, o.htk);
  const edges: number[] = [];
  for (let i = 0; i < o.nMels + 2; i++) edges.push(melToHz(lo + (i * (hi - lo)) / (o.nMels + 1), o.htk));
  const out: number[][] = [];
  for (let m = 0; m < o.nMels; m++) {
    const row: number[] = [];
    for (let b = 0; b < nb; b++) {
      const f = (b * o.sampleRate) / o.nFft;
      const up = (f - edges[m]) / (edges[m + 1] - edges[m]);
      const down = (edges[m + 2] - f) / (edges[m + 2] - edges[m + 1]);
      let w = Math.max(0, Math.min(up, down));
      if (o.slaneyNorm) w *= 2 / (edges[m + 2] - edges[m]);
      row.push(w);
    }
    out.push(row);
  }
  return out;
}

/** Power spectrum frames [⌊len/hop⌋][nFft/2 + 1] of one clip. */
export function powerSpectrum(x: ArrayLike<number>, o: RefMelOptions): number[][] {
  const n = x.length;
  const half = o.nFft / 2;
  const at = (t: number): number => {
    if (t >= 0 && t < n) return x[t];
    if (!o.reflect) return 0;
    if (t < 0) return x[-t];
    return x[2 * (n - 1) - t];
  };
  const win = new Float64Array(o.nFft);
  const left = Math.floor((o.nFft - o.winLength) / 2);
  for (let i = 0; i < o.winLength; i++) win[left + i] = 0.5 * (1 - Math.cos((2 * Math.PI * i) / o.winLength));
  const frames = Math.floor(n / o.hop);
  const out: number[][] = [];
  for (let f = 0; f < frames; f++) {
    const seg = new Float64Array(o.nFft);
    for (let k = 0; k < o.nFft; k++) seg[k] = at(f * o.hop - half + k) * win[k];
    const row: number[] = [];
    for (let b = 0; b <= half; b++) {
      let re = 0;
      let im = 0;
      for (let k = 0; k < o.nFft; k++) {
        const a = (2 * Math.PI * ((k * b) % o.nFft)) / o.nFft;
        re += seg[k] * Math.cos(a);
        im -= seg[k] * Math.sin(a);
      }
      row.push(re * re + im * im);
    }
    out.push(row);
  }
  return out;
}

/** Log-mel [frames][nMels] of one clip. */
export function logMel(x: ArrayLike<number>, o: RefMelOptions): number[][] {
  const fb = melFilters(o);
  const spec = powerSpectrum(x, o);
  const out = spec.map((p) => fb.map((w) => Math.log10(Math.max(w.reduce((s, v, b) => s + v * p[b], 0), 1e-10))));
  if (!o.whisperNorm) return out;
  const mx = Math.max(...out.flat());
  return out.map((r) => r.map((v) => (Math.max(v, mx - 8) + 4) / 4));
}
