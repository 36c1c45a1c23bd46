// A self-contained HTML report of a run: the summary figures, loss curves (training loss,
// loss per data source, validation loss) drawn with uPlot inlined into the file so it
// opens offline, and generated examples. Node-only.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Series for the charts from metrics.jsonl records. */
export function lossSeries(metrics: Array<Record<string, unknown>>): { train: Array<[number, number]>; val: Array<[number, number]>; bySource: Record<string, Array<[number, number]>> } {
  const train: Array<[number, number]> = [];
  const val: Array<[number, number]> = [];
  const bySource: Record<string, Array<[number, number]>> = {};
  for (const m of metrics) {
    if (m.event === 'train' && typeof m.loss === 'number') {
      train.push([m.step as number, m.loss]);
      for (const [src, v] of Object.entries((m.lossBySource as Record<string, number>) ?? {})) (bySource[src] ??= []).push([m.step as number, v]);
    } else if (m.event === 'val' && typeof m.valLoss === 'number') val.push([m.step as number, m.valLoss]);
  }
  return { train, val, bySource };
}

export function writeReport(
  path: string,
  summary: Record<string, unknown>,
  metrics: Array<Record<string, unknown>>,
  examples: Array<{ source: string; id: string; expected: string; generated: string; correct: boolean }>,
): void {
  const uplotJs = readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8');
  const uplotCss = readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8');
  const series = lossSeries(metrics);
  const fmt = (v: unknown) => (typeof v === 'number' ? (Math.abs(v) < 10 ? v.toFixed(4) : v.toFixed(0)) : v === null ? '—' : escapeHtml(String(v)));
  const rows = Object.entries(summary)
    .map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${fmt(v)}</td></tr>`)
    .join('');
  const ex = examples
    .map((e) => `<tr class="${e.correct ? 'ok' : 'bad'}"><td>${escapeHtml(e.source)}</td><td>${escapeHtml(e.id)}</td><td>${escapeHtml(e.expected)}</td><td>${escapeHtml(e.generated)}</td><td>${e.correct ? '✓' : '✗'}</td></tr>`)
    .join('');
  const data = JSON.stringify(series).replace(/</g, '\\u003c');
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>webomni run ${escapeHtml(String(summary.name ?? ''))}</title>
<style>${uplotCss}
body{font:14px system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0 20px}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left}th{background:#f4f4f4}.ok td:last-child{color:#080}.bad td:last-child{color:#b00}
.chart{margin:10px 0 24px}</style></head><body>
<h1>webomni run: ${escapeHtml(String(summary.name ?? ''))}</h1>
<table>${rows}</table>
<h2>Training loss</h2><div id="train" class="chart"></div>
<h2>Loss per data source</h2><div id="sources" class="chart"></div>
<h2>Validation loss</h2><div id="val" class="chart"></div>
<h2>Held-out examples</h2><table><tr><th>source</th><th>sample</th><th>target</th><th>generated</th><th></th></tr>${ex}</table>
<script>${uplotJs}</script>
<script>
const S = ${data};
const palette = ['#1f77b4','#d62728','#2ca02c','#ff7f0e','#9467bd','#8c564b'];
function plot(el, named) {
  const names = Object.keys(named).filter(k => named[k].length);
  if (!names.length) { document.getElementById(el).textContent = 'no data'; return; }
  const xs = [...new Set(names.flatMap(n => named[n].map(p => p[0])))].sort((a, b) => a - b);
  const cols = names.map(n => { const m = new Map(named[n]); return xs.map(x => m.has(x) ? m.get(x) : null); });
  new uPlot({ width: 760, height: 260, scales: { x: { time: false } }, axes: [{ label: 'step' }, { label: 'loss' }],
    series: [{}, ...names.map((n, i) => ({ label: n, stroke: palette[i % palette.length], spanGaps: true, width: 1.5 }))] },
    [xs, ...cols], document.getElementById(el));
}
plot('train', { train: S.train });
plot('sources', S.bySource);
plot('val', { validation: S.val });
</script></body></html>
`;
  writeFileSync(path, html);
}
