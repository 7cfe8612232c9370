import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, SETTINGS } from '../../core/index.js';

describe('config', () => {
  it('has a default for every optional setting and resolves the data dir', () => {
    const config = loadConfig({});
    expect(config.httpPort).toBe(8080);
    expect(config.gatewayPort).toBe(5432);
    expect(config.catalogUrl).toBeUndefined();
    expect(path.isAbsolute(config.dataDir)).toBe(true);
  });

  it('reads env values and parses their types', () => {
    const config = loadConfig({ PGWAKE_HTTP_PORT: '9000', PGWAKE_REQUIRE_TLS: 'yes', CATALOG_URL: 'postgres://u:p@h:5/db' });
    expect(config.httpPort).toBe(9000);
    expect(config.requireTls).toBe(true);
    expect(config.catalogUrl).toBe('postgres://u:p@h:5/db');
  });

  it.each([
    [{ PGWAKE_HTTP_PORT: 'eighty' }, /PGWAKE_HTTP_PORT: expected an integer/],
    [{ PGWAKE_GATEWAY_PORT: '70000' }, /PGWAKE_GATEWAY_PORT: expected 0\.\.65535/],
    [{ CATALOG_URL: 'mysql://x' }, /CATALOG_URL: expected a postgres/],
    [{ PGWAKE_SIGNUP: 'maybe' }, /PGWAKE_SIGNUP: expected one of open, closed/],
    [{ PGWAKE_SECRET_KEY: 'abc' }, /PGWAKE_SECRET_KEY: expected 64 hex/],
    [{ PGWAKE_TLS_CERT: '/x.pem' }, /must be set together/],
  ])('refuses %o naming the setting', (env, message) => {
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('reads a JSON config file, with env taking precedence', () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'pgwake-cfg-')), 'pgwake.json');
    writeFileSync(file, JSON.stringify({ PGWAKE_HTTP_PORT: 7000, PGWAKE_GATEWAY_PORT: 6543 }));
    const config = loadConfig({ PGWAKE_CONFIG: file, PGWAKE_GATEWAY_PORT: '6000' });
    expect(config.httpPort).toBe(7000);
    expect(config.gatewayPort).toBe(6000);
  });

  it('documents every setting', () => {
    for (const s of Object.values(SETTINGS)) expect(s.doc.length).toBeGreaterThan(10);
  });
});

describe('README', () => {
  it('carries the settings table exactly as the config defines it', async () => {
    const { readFile } = await import('node:fs/promises');
    const { settingsMarkdownTable } = await import('../../core/index.js');
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
    expect(readme).toContain(settingsMarkdownTable());
  });
});
