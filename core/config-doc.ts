import { SETTINGS } from './config.js';

/** The README's settings table, made from the same table the parser reads. */
export function settingsMarkdownTable(): string {
  const rows = Object.values(SETTINGS).map((s) => {
    const def = s.default === undefined ? '—' : `\`${String(s.default)}\``;
    return `| \`${s.env}\` | ${def} | ${s.doc} |`;
  });
  return ['| Setting | Default | What it does |', '|---|---|---|', ...rows].join('\n');
}
