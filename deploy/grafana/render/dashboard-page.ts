import type { Dashboard } from '../queries.js';
import { panelSvg, type Series } from './panel-svg.js';

export const PAGE_WIDTH = 1600;
const PAD = 12;
const HEADER = 64;
/** Grafana's grid: 24 columns, rows of 30 px, 8 px between panels. */
const ROW = 30;
const GAP = 8;

/** Where a dashboard's panels land on the page, by Grafana's gridPos. */
function box(p: { x: number; y: number; w: number; h: number }) {
  const col = (PAGE_WIDTH - 2 * PAD + GAP) / 24;
  return { left: PAD + p.x * col, top: HEADER + p.y * (ROW + GAP), width: p.w * col - GAP, height: p.h * (ROW + GAP) - GAP };
}

export function pageHeight(d: Dashboard): number {
  return Math.max(...d.panels.map((p) => box(p.gridPos).top + box(p.gridPos).height)) + PAD;
}

/** One dashboard as a static HTML page: the panels where Grafana puts them, each an SVG of what its queries returned. */
export function dashboardPage(d: Dashboard, data: Series[][], range: { start: number; end: number }, note: string): string {
  const from = new Date(range.start * 1000).toISOString().replace('T', ' ').slice(0, 19);
  const to = new Date(range.end * 1000).toISOString().slice(11, 19);
  const panels = d.panels.map((p, i) => {
    const b = box(p.gridPos);
    return `<div style="position:absolute;left:${b.left}px;top:${b.top}px">${panelSvg(p, data[i]!, range, Math.round(b.width), Math.round(b.height))}</div>`;
  });
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${d.title}</title>
<style>body{margin:0;background:#111217;color:#d8d9da;font-family:Inter,'DejaVu Sans',Helvetica,Arial,sans-serif;width:${PAGE_WIDTH}px;height:${pageHeight(d)}px;position:relative;overflow:hidden}
h1{position:absolute;left:${PAD}px;top:10px;margin:0;font-size:20px;font-weight:500}
.meta{position:absolute;left:${PAD}px;top:38px;font-size:12px;color:#8e8e8e}</style></head>
<body><h1>${d.title}</h1><div class="meta">${from} – ${to} UTC · ${note}</div>
${panels.join('\n')}
</body></html>
`;
}
