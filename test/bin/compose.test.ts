import { execFile, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig, SETTINGS } from '../../core/index.js';

// docker-compose.yml must be valid for `docker compose config` (issue 7). Where the compose
// plugin is installed the test runs it; everywhere it also checks what `config` cannot:
// that the file fits pgwake (settings, ports in the shared namespace, scrape targets, files).
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

/** `${VAR}`, `${VAR:-default}`, `${VAR:?message}` as compose fills them in from `env`. */
function interpolate(value: unknown, env: Record<string, string>): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Z0-9_]+)(?::([-?])([^}]*))?\}/g, (_, name: string, op?: string, arg?: string) => {
      if (env[name] !== undefined && env[name] !== '') return env[name]!;
      if (op === '-') return arg ?? '';
      throw new Error(`${name} must be set${arg ? `: ${arg}` : ''}`);
    });
  }
  if (Array.isArray(value)) return value.map((v) => interpolate(v, env));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env)]));
  return value;
}

interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }> | string[];
  network_mode?: string;
}

const compose = interpolate(parse(read('docker-compose.yml'), { merge: true }), {}) as { services: Record<string, Service>; volumes: Record<string, unknown> };
const services = compose.services;
const ROLES = ['gateway', 'autoscaler', 'control-api'];
const pgwakeServices = Object.entries(services).filter(([, s]) => s.image === 'pgwake:local' && ROLES.includes(s.command?.[0] ?? ''));

/** The ports a role process opens, by what its settings say. */
function portsOf(s: Service): number[] {
  const env = s.environment!;
  const role = s.command![0];
  if (role === 'gateway') return [Number(env.PGWAKE_GATEWAY_PORT), Number(env.PGWAKE_METRICS_PORT)];
  if (role === 'autoscaler') return [Number(env.PGWAKE_METRICS_PORT)];
  return [Number(env.PGWAKE_HTTP_PORT)];
}

describe('docker-compose.yml', () => {
  it('runs the distributed stack: Redis, a catalog Postgres, two gateways, two autoscalers, the control API, Prometheus, Grafana', () => {
    expect(Object.keys(services)).toEqual(expect.arrayContaining(['redis', 'catalog', 'control-api', 'prometheus', 'grafana']));
    const byRole = (role: string) => pgwakeServices.filter(([, s]) => s.command![0] === role).map(([name]) => name);
    expect(byRole('gateway')).toHaveLength(2);
    expect(byRole('autoscaler')).toHaveLength(2);
    expect(byRole('control-api')).toHaveLength(1);
  });

  it('gives every pgwake process settings pgwake accepts, pointing at services that exist', () => {
    const known = new Set(Object.values(SETTINGS).map((s) => s.env));
    for (const [name, s] of pgwakeServices) {
      const env = s.environment!;
      // PGWAKE_SECRET_KEY_FILE is read by the image's entrypoint, which sets PGWAKE_SECRET_KEY from it.
      for (const key of Object.keys(env)) expect(known.has(key) || key === 'PGWAKE_SECRET_KEY_FILE', `${name}: ${key} is not a pgwake setting`).toBe(true);
      const config = loadConfig({ ...env, PGWAKE_SECRET_KEY: 'a'.repeat(64) });
      const redis = new URL(config.redisUrl!);
      expect(services[redis.hostname], `${name}: REDIS_URL host`).toBeDefined();
      const catalogUrl = new URL(config.catalogUrl!);
      const catalog = services[catalogUrl.hostname]!;
      expect(catalog, `${name}: CATALOG_URL host`).toBeDefined();
      expect(catalogUrl.username).toBe(catalog.environment!.POSTGRES_USER);
      expect(decodeURIComponent(catalogUrl.password)).toBe(catalog.environment!.POSTGRES_PASSWORD);
      expect(catalogUrl.pathname).toBe(`/${catalog.environment!.POSTGRES_DB}`);
      expect(config.listenHost, `${name} must listen beyond its loopback to be published`).toBe('0.0.0.0');
      // The key file is a volume the keygen service fills, mounted here.
      expect(s.volumes!.some((v) => v.split(':')[1] === path.dirname(env.PGWAKE_SECRET_KEY_FILE!))).toBe(true);
      expect(Object.keys(s.depends_on as object)).toEqual(expect.arrayContaining(['pgwake-keygen', 'redis', 'catalog']));
    }
  });

  it('gives each pgwake process its own ports in the namespace they share, and publishes the client-facing ones', () => {
    const owners = new Set(pgwakeServices.map(([, s]) => s.network_mode));
    expect([...owners]).toEqual(['service:pgwake-net']);
    const ports = pgwakeServices.flatMap(([, s]) => portsOf(s));
    expect(new Set(ports).size, `ports: ${ports.join(', ')}`).toBe(ports.length);
    const published = services['pgwake-net']!.ports!.map((p) => Number(p.split(':')[1]));
    const gatewayPorts = pgwakeServices.filter(([, s]) => s.command![0] === 'gateway').map(([, s]) => Number(s.environment!.PGWAKE_GATEWAY_PORT));
    const apiPort = Number(services['control-api']!.environment!.PGWAKE_HTTP_PORT);
    expect(published.sort()).toEqual([...gatewayPorts, apiPort].sort());
  });

  it('refers only to services, volumes and files that exist', () => {
    for (const [name, s] of Object.entries(services)) {
      const deps = Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {});
      for (const dep of deps) expect(services[dep], `${name} depends on ${dep}`).toBeDefined();
      if (s.network_mode?.startsWith('service:')) expect(services[s.network_mode.slice(8)]).toBeDefined();
      for (const volume of s.volumes ?? []) {
        const source = volume.split(':')[0]!;
        if (source.startsWith('./')) expect(existsSync(path.join(ROOT, source)), `${name} mounts ${source}`).toBe(true);
        else expect(compose.volumes, `${name} uses volume ${source}`).toHaveProperty(source);
      }
    }
  });

  it('is what `docker compose config` accepts, where a compose CLI is installed', async () => {
    // The compose plugin (`docker compose`), else the standalone `docker-compose` (Debian's package).
    const cli = [['docker', 'compose'], ['docker-compose']].find(([cmd, ...args]) => spawnSync(cmd!, [...args, 'version']).status === 0);
    if (!cli) {
      // Neither here: the structural checks above stand in for it.
      expect(spawnSync('docker', ['compose', 'version']).status).not.toBe(0);
      return;
    }
    const [cmd, ...args] = cli;
    const { stdout } = await promisify(execFile)(cmd!, [...args, '-f', path.join(ROOT, 'docker-compose.yml'), 'config', '--services'], { cwd: ROOT });
    expect(stdout.split('\n').filter(Boolean).sort()).toEqual(Object.keys(services).sort());
  });
});

describe('deploy/', () => {
  it('scrapes exactly the metrics endpoints the compose file opens', () => {
    const prometheus = parse(read('deploy/prometheus/prometheus.yml')) as { scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[] };
    const targets = prometheus.scrape_configs.flatMap((job) => job.static_configs.flatMap((c) => c.targets));
    const expected = pgwakeServices.map(([, s]) => {
      const env = s.environment!;
      return `pgwake-net:${s.command![0] === 'control-api' ? env.PGWAKE_HTTP_PORT : env.PGWAKE_METRICS_PORT}`;
    });
    expect(targets.sort()).toEqual(expected.sort());
  });

  it('charts only metrics pgwake has', () => {
    const sources = ['gateway', 'autoscaler', 'control-api', 'core']
      .flatMap(function walk(dir: string): string[] {
        return readdirSync(path.join(ROOT, dir)).flatMap((f) => {
          const rel = path.join(dir, f);
          return statSync(path.join(ROOT, rel)).isDirectory() ? walk(rel) : rel.endsWith('.ts') ? [read(rel)] : [];
        });
      })
      .join('\n');
    const dashboards = readdirSync(path.join(ROOT, 'deploy/grafana/dashboards')).map((f) => JSON.parse(read(`deploy/grafana/dashboards/${f}`)) as { panels: { targets: { expr: string }[] }[] });
    const used = new Set(dashboards.flatMap((d) => d.panels.flatMap((p) => p.targets.flatMap((t) => t.expr.match(/pgwake_[a-z_]+/g) ?? []))));
    expect(used.size).toBeGreaterThan(5);
    // A histogram's series (_bucket, _sum, _count) are named by the histogram. That a running pgwake
    // exports each of them after traffic is test/observability/dashboards.test.ts.
    for (const metric of used) expect(sources, metric).toContain(`'${metric.replace(/_(bucket|sum|count)$/, '')}'`);
  });

  it('builds an image whose sources and entrypoint exist', () => {
    const dockerfile = read('Dockerfile');
    for (const [, from] of dockerfile.matchAll(/^COPY (\S+)/gm)) for (const f of from!.split(/\s+/)) expect(existsSync(path.join(ROOT, f)), `COPY ${f}`).toBe(true);
    // Every room bin/ imports is in the image.
    const imported = new Set([...read('bin/stack.ts').matchAll(/from '\.\.\/([a-z-]+)\//g), ...read('bin/pgwake.ts').matchAll(/import\('\.\.\/([a-z-]+)\//g)].map((m) => m[1]!));
    for (const room of imported) if (room !== 'bench') expect(dockerfile).toContain(`COPY ${room} ./${room}`);
    accessSync(path.join(ROOT, 'deploy/docker-entrypoint.sh'), constants.X_OK);
    expect(spawnSync('sh', ['-n', path.join(ROOT, 'deploy/docker-entrypoint.sh')]).status).toBe(0);
  });
});
