import { linearTicks, logTicks, tickLabel } from './ticks.js';

/** A chart the report draws as a small standalone SVG: one or more named series of (x, y) points. */
export interface LineChart {
  /** File name stem, unique within a report. */
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  xScale?: 'linear' | 'log';
  /** 'step' draws a staircase (an empirical CDF); 'line' joins the points. */
  shape?: 'line' | 'step';
  series: { name: string; points: [number, number][] }[];
  /** Vertical markers, e.g. when a handoff began. */
  markers?: { x: number; label: string }[];
}

const WIDTH = 780;
const HEIGHT = 380;
const M = { top: 52, right: 200, bottom: 50, left: 64 };
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

const escapeXml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const fmt = (n: number) => Number(n.toFixed(1)).toString();

/** A long title on two lines (at about 7 px a character at 14 px bold), cut with an ellipsis beyond that. */
function wrapTitle(title: string): string[] {
  const perLine = Math.floor((WIDTH - 24) / 7.5);
  const lines: string[] = [''];
  for (const word of title.split(' ')) {
    const current = lines[lines.length - 1]!;
    if (current && current.length + 1 + word.length > perLine) lines.push(word);
    else lines[lines.length - 1] = current ? `${current} ${word}` : word;
  }
  return lines.length <= 2 ? lines : [lines[0]!, `${lines.slice(1).join(' ').slice(0, perLine - 1)}…`];
}

/** Renders `chart` as SVG text: axes with ticks, one coloured path per series, a legend at the right. */
export function renderLineChart(chart: LineChart): string {
  const log = chart.xScale === 'log';
  const points = chart.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!log || x > 0));
  const xs = points.map(([x]) => x);
  const ys = points.map(([, y]) => y);
  let [xMin, xMax] = xs.length ? [Math.min(...xs), Math.max(...xs)] : [0, 1];
  let yMax = ys.length ? Math.max(...ys) : 1;
  const yMin = Math.min(0, ...ys);
  if (xMax === xMin) [xMin, xMax] = log ? [xMin / 2, xMax * 2] : [xMin - 1, xMax + 1];
  if (yMax === yMin) yMax = yMin + 1;
  const xTicks = log ? logTicks(xMin, xMax) : linearTicks(xMin, xMax);
  const yTicks = linearTicks(yMin, yMax, 5);
  // Round the top up to a tick, so the highest point sits under a labelled line.
  const last = yTicks[yTicks.length - 1];
  if (last !== undefined && yTicks.length > 1 && last < yMax) yTicks.push(Number((last + (yTicks[1]! - yTicks[0]!)).toPrecision(12)));
  yMax = Math.max(yMax, yTicks[yTicks.length - 1] ?? yMax);
  const plotW = WIDTH - M.left - M.right;
  const plotH = HEIGHT - M.top - M.bottom;
  const tx = (x: number) => M.left + (log ? (Math.log10(x) - Math.log10(xMin)) / (Math.log10(xMax) - Math.log10(xMin)) : (x - xMin) / (xMax - xMin)) * plotW;
  const ty = (y: number) => M.top + plotH - ((y - yMin) / (yMax - yMin)) * plotH;

  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    ...wrapTitle(chart.title).map((line, i) => `<text x="12" y="${18 + i * 16}" font-size="14" font-weight="bold">${escapeXml(line)}</text>`),
  ];
  for (const t of xTicks) {
    const x = fmt(tx(t));
    out.push(`<line x1="${x}" y1="${M.top}" x2="${x}" y2="${M.top + plotH}" stroke="#eee"/>`);
    out.push(`<text x="${x}" y="${M.top + plotH + 16}" text-anchor="middle">${tickLabel(t)}</text>`);
  }
  for (const t of yTicks) {
    const y = fmt(ty(t));
    out.push(`<line x1="${M.left}" y1="${y}" x2="${M.left + plotW}" y2="${y}" stroke="#eee"/>`);
    out.push(`<text x="${M.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${tickLabel(t)}</text>`);
  }
  out.push(`<rect x="${M.left}" y="${M.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#999"/>`);
  out.push(`<text x="${M.left + plotW / 2}" y="${HEIGHT - 10}" text-anchor="middle">${escapeXml(chart.xLabel)}</text>`);
  out.push(`<text transform="translate(16 ${M.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeXml(chart.yLabel)}</text>`);
  for (const m of chart.markers ?? []) {
    if (m.x < xMin || m.x > xMax || (log && m.x <= 0)) continue;
    const x = fmt(tx(m.x));
    out.push(`<line x1="${x}" y1="${M.top}" x2="${x}" y2="${M.top + plotH}" stroke="#555" stroke-dasharray="4 3"/>`);
    out.push(`<text x="${x}" y="${M.top - 4}" text-anchor="middle" font-size="10">${escapeXml(m.label)}</text>`);
  }
  chart.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!log || x > 0));
    if (pts.length > 0) {
      const d =
        chart.shape === 'step'
          ? // A staircase: along at the last height, then up to the next point's.
            [`M${fmt(tx(pts[0]![0]))},${fmt(ty(yMin))}`, ...pts.map(([x, y]) => `H${fmt(tx(x))} V${fmt(ty(y))}`)]
          : pts.map(([x, y], j) => `${j === 0 ? 'M' : 'L'}${fmt(tx(x))},${fmt(ty(y))}`);
      out.push(`<path d="${d.join(' ')}" fill="none" stroke="${color}" stroke-width="1.8"/>`);
    }
    const ly = M.top + 8 + i * 18;
    out.push(`<line x1="${M.left + plotW + 12}" y1="${ly}" x2="${M.left + plotW + 32}" y2="${ly}" stroke="${color}" stroke-width="3"/>`);
    out.push(`<text x="${M.left + plotW + 38}" y="${ly}" dominant-baseline="middle">${escapeXml(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
