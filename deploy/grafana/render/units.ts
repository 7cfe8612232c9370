/** Values written the way Grafana writes its units (`s`, `Bps`, `bytes`, `ops`, `reqps`, `short`, `none`). */
export function formatValue(v: number, unit: string): string {
  if (!Number.isFinite(v)) return '–';
  switch (unit) {
    case 's':
      return seconds(v);
    case 'bytes':
      return bytes(v);
    case 'Bps':
      return `${bytes(v)}/s`;
    case 'ops':
      return `${short(v)} ops/s`;
    case 'reqps':
      return `${short(v)} req/s`;
    case 'none':
      return Number.isInteger(v) ? String(v) : v.toFixed(2);
    default:
      return short(v);
  }
}

function seconds(v: number): string {
  const a = Math.abs(v);
  if (a === 0) return '0 s';
  if (a < 1e-3) return `${trim(v * 1e6)} µs`;
  if (a < 1) return `${trim(v * 1e3)} ms`;
  if (a < 60) return `${trim(v)} s`;
  return `${trim(v / 60)} min`;
}

function bytes(v: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let x = v;
  while (Math.abs(x) >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return `${trim(x)} ${units[i]}`;
}

function short(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e9) return `${trim(v / 1e9)} Bil`;
  if (a >= 1e6) return `${trim(v / 1e6)} Mil`;
  if (a >= 1e3) return `${trim(v / 1e3)} K`;
  return trim(v);
}

/** At most three significant digits, no trailing zeros. */
function trim(v: number): string {
  if (v === 0) return '0';
  const digits = Math.max(0, 2 - Math.floor(Math.log10(Math.abs(v))));
  return String(Number(v.toFixed(Math.min(digits, 6))));
}

/** Round tick values spanning [min, max]: steps of 1, 2 or 5 times a power of ten. */
export function niceTicks(min: number, max: number, count = 4): number[] {
  if (max <= min) max = min + 1;
  const raw = (max - min) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const ticks: number[] = [];
  // The last tick is at or above max, so nothing is drawn past the frame.
  for (let t = Math.floor(min / step) * step; ticks.length === 0 || ticks.at(-1)! < max - step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}
