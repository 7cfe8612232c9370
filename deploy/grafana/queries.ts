/**
 * What the dashboards ask Prometheus, and whether a pgwake exports it: the
 * dashboards' PromQL parsed with Prometheus's own grammar (lezer-promql) to list
 * the metric names it selects, and Prometheus text (what `/metrics` serves)
 * read into metric families. Used by the dashboard test and the panel renderer.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parser } from '@prometheus-io/lezer-promql';
import { DASHBOARDS_DIR } from './dashboards.js';

export interface PanelTarget {
  expr: string;
  legend: string;
  /** Table panels ask for one instant value. */
  instant: boolean;
}

export interface Panel {
  title: string;
  description: string;
  kind: 'timeseries' | 'stat' | 'table';
  unit: string;
  gridPos: { x: number; y: number; w: number; h: number };
  targets: PanelTarget[];
}

export interface Dashboard {
  file: string;
  uid: string;
  title: string;
  description: string;
  panels: Panel[];
  datasourceUids: string[];
}

interface GrafanaPanel {
  title: string;
  description?: string;
  type: string;
  gridPos: Panel['gridPos'];
  datasource?: { uid: string };
  fieldConfig?: { defaults?: { unit?: string } };
  targets?: { expr: string; legendFormat?: string; instant?: boolean; datasource?: { uid: string } }[];
}

/** Every dashboard JSON file under deploy/grafana/dashboards, as Grafana's provisioning would load them. */
export function loadDashboards(dir = DASHBOARDS_DIR): Dashboard[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => {
      const json = JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as { uid: string; title: string; description?: string; panels: GrafanaPanel[] };
      const datasourceUids = new Set<string>();
      const panels = json.panels.map((p): Panel => {
        if (p.datasource) datasourceUids.add(p.datasource.uid);
        for (const t of p.targets ?? []) if (t.datasource) datasourceUids.add(t.datasource.uid);
        return {
          title: p.title,
          description: p.description ?? '',
          kind: p.type === 'stat' || p.type === 'table' ? p.type : 'timeseries',
          unit: p.fieldConfig?.defaults?.unit ?? 'short',
          gridPos: p.gridPos,
          targets: (p.targets ?? []).map((t) => ({ expr: t.expr, legend: t.legendFormat ?? '', instant: t.instant === true })),
        };
      });
      return { file: f, uid: json.uid, title: json.title, description: json.description ?? '', panels, datasourceUids: [...datasourceUids] };
    });
}

/**
 * The metric names a PromQL expression selects, as written (`x_bucket` stays
 * `x_bucket`). Throws on a syntax error, and on a selector without a literal
 * metric name (`{__name__=~…}`), which no check could follow.
 */
export function metricNamesOf(expr: string): string[] {
  const tree = parser.parse(expr);
  const names = new Set<string>();
  const cursor = tree.cursor();
  do {
    if (cursor.type.isError) throw new Error(`PromQL syntax error at ${cursor.from} in: ${expr}`);
    if (cursor.name === 'VectorSelector') {
      const node = cursor.node;
      const id = node.getChild('Identifier');
      if (!id) throw new Error(`a selector without a metric name in: ${expr}`);
      names.add(expr.slice(id.from, id.to));
    }
  } while (cursor.next());
  return [...names];
}

/** One metric family of a Prometheus text exposition: its type and samples. */
export interface MetricFamily {
  name: string;
  type: string;
  samples: { name: string; labels: Record<string, string>; value: number }[];
}

/** Prometheus text format (what prom-client serves) read into families by name. */
export function parseExposition(text: string): Map<string, MetricFamily> {
  const families = new Map<string, MetricFamily>();
  const family = (name: string) => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { name, type: 'untyped', samples: [] }));
    return f;
  };
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type) {
      family(type[1]!).type = type[2]!;
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    family(familyOf(m[1]!, families)).samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return families;
}

const SUFFIXES: Record<string, string[]> = { histogram: ['_bucket', '_sum', '_count'], summary: ['_sum', '_count'] };

/** The family a sample or a queried name belongs to: itself, or a histogram's or summary's `_bucket`/`_sum`/`_count`. */
export function familyOf(name: string, families: Map<string, MetricFamily>): string {
  if (families.has(name)) return name;
  for (const [type, suffixes] of Object.entries(SUFFIXES)) {
    for (const s of suffixes) {
      if (!name.endsWith(s)) continue;
      const base = name.slice(0, -s.length);
      if (families.get(base)?.type === type) return base;
    }
  }
  return name;
}

/** The samples a queried name selects in `families` (none when it is not exported). */
export function samplesOf(name: string, families: Map<string, MetricFamily>): MetricFamily['samples'] {
  const f = families.get(familyOf(name, families));
  return f ? f.samples.filter((s) => s.name === name) : [];
}
