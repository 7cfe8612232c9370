import type { Panel } from '../queries.js';
import { formatValue, niceTicks } from './units.js';

/** One series a query returned: its legend and its [unix seconds, value] points. */
export interface Series {
  name: string;
  labels: Record<string, string>;
  points: [number, number][];
}

/** Grafana's classic palette, in its order. */
const PALETTE = ['#7eb26d', '#eab839', '#6ed0e0', '#ef843c', '#e24d42', '#1f78c1', '#ba43a9', '#705da0', '#508642', '#cca300'];
const TEXT = '#d8d9da';
const MUTED = '#8e8e8e';
const GRID = '#2c3235';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** A panel drawn as Grafana would show it: a frame with its title, then a graph, a big number or a table. */
export function panelSvg(panel: Panel, series: Series[], range: { start: number; end: number }, width: number, height: number): string {
  const body = panel.kind === 'stat' ? stat(panel, series, width, height) : panel.kind === 'table' ? table(series, width, height) : timeseries(panel, series, range, width, height);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Inter, 'DejaVu Sans', Helvetica, Arial, sans-serif">`,
    `<rect x="0.5" y="0.5" width="${width - 1}" height="${height - 1}" rx="3" fill="#181b1f" stroke="#2c3235"/>`,
    `<text x="10" y="20" font-size="13" font-weight="600" fill="${TEXT}">${esc(panel.title)}</text>`,
    body,
    '</svg>',
  ].join('\n');
}

function stat(panel: Panel, series: Series[], width: number, height: number): string {
  const s = series[0];
  const last = s?.points.at(-1)?.[1];
  const out: string[] = [];
  if (s && s.points.length > 1) {
    const vs = s.points.map((p) => p[1]);
    const min = Math.min(...vs);
    const max = Math.max(...vs);
    const x0 = s.points[0]![0];
    const x1 = s.points.at(-1)![0];
    const px = (t: number) => ((t - x0) / Math.max(1, x1 - x0)) * (width - 2) + 1;
    const py = (v: number) => height - 4 - ((v - min) / (max - min || 1)) * (height * 0.4);
    const d = s.points.map(([t, v], i) => `${i ? 'L' : 'M'}${px(t).toFixed(1)},${py(v).toFixed(1)}`).join('');
    out.push(`<path d="${d}L${px(x1).toFixed(1)},${height - 2}L1,${height - 2}Z" fill="#73bf69" fill-opacity="0.15"/>`, `<path d="${d}" fill="none" stroke="#73bf69" stroke-width="1.5"/>`);
  }
  out.push(`<text x="${width / 2}" y="${height / 2 + 14}" font-size="${Math.min(36, height / 3)}" font-weight="600" text-anchor="middle" fill="#73bf69">${esc(last === undefined ? 'No data' : formatValue(last, panel.unit))}</text>`);
  return out.join('\n');
}

function table(series: Series[], width: number, height: number): string {
  const columns = [...new Set(series.flatMap((s) => Object.keys(s.labels)))];
  if (columns.length === 0) return `<text x="${width / 2}" y="${height / 2}" font-size="14" text-anchor="middle" fill="${MUTED}">No data</text>`;
  const colW = (width - 20) / columns.length;
  const rowH = 22;
  const out = columns.map((c, i) => `<text x="${10 + i * colW}" y="50" font-size="12" font-weight="600" fill="#6e9fff">${esc(c)}</text>`);
  out.push(`<line x1="10" x2="${width - 10}" y1="58" y2="58" stroke="${GRID}"/>`);
  const rows = Math.floor((height - 70) / rowH);
  series.slice(0, rows).forEach((s, r) => {
    columns.forEach((c, i) => out.push(`<text x="${10 + i * colW}" y="${78 + r * rowH}" font-size="12" fill="${TEXT}">${esc(s.labels[c] ?? '')}</text>`));
  });
  if (series.length > rows) out.push(`<text x="10" y="${height - 6}" font-size="11" fill="${MUTED}">… ${series.length - rows} more</text>`);
  return out.join('\n');
}

function timeseries(panel: Panel, series: Series[], range: { start: number; end: number }, width: number, height: number): string {
  const finite = series.map((s) => ({ ...s, points: s.points.filter(([, v]) => Number.isFinite(v)) })).filter((s) => s.points.length > 0);
  if (finite.length === 0) return `<text x="${width / 2}" y="${height / 2}" font-size="14" text-anchor="middle" fill="${MUTED}">No data</text>`;
  const legendRows = Math.min(3, Math.ceil(finite.length / Math.max(1, Math.floor(width / 190))));
  const left = 66;
  const right = width - 12;
  const top = 34;
  const bottom = height - 24 - legendRows * 16;
  const values = finite.flatMap((s) => s.points.map((p) => p[1]));
  const ticks = niceTicks(Math.min(0, ...values), Math.max(...values));
  const lo = ticks[0]!;
  const hi = ticks.at(-1)!;
  const px = (t: number) => left + ((t - range.start) / (range.end - range.start)) * (right - left);
  const py = (v: number) => bottom - ((v - lo) / (hi - lo || 1)) * (bottom - top);
  const out: string[] = [];
  for (const t of ticks) {
    out.push(`<line x1="${left}" x2="${right}" y1="${py(t).toFixed(1)}" y2="${py(t).toFixed(1)}" stroke="${GRID}"/>`);
    out.push(`<text x="${left - 6}" y="${(py(t) + 4).toFixed(1)}" font-size="10" text-anchor="end" fill="${MUTED}">${esc(formatValue(t, panel.unit))}</text>`);
  }
  const span = range.end - range.start;
  const stepS = [10, 15, 30, 60, 120, 300, 600].find((s) => span / s <= Math.max(3, (right - left) / 90)) ?? 600;
  for (let t = Math.ceil(range.start / stepS) * stepS; t <= range.end; t += stepS) {
    const label = new Date(t * 1000).toISOString().slice(11, 19);
    out.push(`<line x1="${px(t).toFixed(1)}" x2="${px(t).toFixed(1)}" y1="${top}" y2="${bottom}" stroke="${GRID}" stroke-dasharray="2,3"/>`);
    out.push(`<text x="${px(t).toFixed(1)}" y="${bottom + 14}" font-size="10" text-anchor="middle" fill="${MUTED}">${label}</text>`);
  }
  finite.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length]!;
    // A gap of more than a few steps is drawn as a gap, as Grafana does for missing points.
    let d = '';
    let prev: number | undefined;
    const gap = Math.max(3, span / 60);
    for (const [t, v] of s.points) {
      d += `${prev === undefined || t - prev > gap ? 'M' : 'L'}${px(t).toFixed(1)},${py(v).toFixed(1)}`;
      prev = t;
    }
    out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.6" stroke-linejoin="round"/>`);
    if (s.points.length === 1) out.push(`<circle cx="${px(s.points[0]![0]).toFixed(1)}" cy="${py(s.points[0]![1]).toFixed(1)}" r="2.5" fill="${color}"/>`);
  });
  const perRow = Math.max(1, Math.floor((right - 10) / 190));
  finite.slice(0, perRow * legendRows).forEach((s, i) => {
    const x = 10 + (i % perRow) * 190;
    const y = bottom + 30 + Math.floor(i / perRow) * 16;
    out.push(`<rect x="${x}" y="${y - 8}" width="12" height="3" fill="${PALETTE[i % PALETTE.length]}"/>`);
    out.push(`<text x="${x + 16}" y="${y - 3}" font-size="11" fill="${TEXT}">${esc(s.name.length > 28 ? `${s.name.slice(0, 27)}…` : s.name)}</text>`);
  });
  return out.join('\n');
}
