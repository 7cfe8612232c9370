import type { Db, DbLive, DescribedDb, Tenant } from '../api-types.js';
import { integerOption, UsageError } from '../args.js';
import { printJson, type Command, type CommandContext } from '../command.js';
import { EXIT } from '../exit-codes.js';
import { renderFields, renderTable } from '../table.js';
import { tenantPath } from './tenants.js';

const dbPath = (tenant: string, db: string) => `${tenantPath(tenant)}/dbs/${encodeURIComponent(db)}`;

/** How the CLI's flags are named in the API's body, to name the flag when the API refuses a field. */
export const DB_FLAGS: Record<string, string> = {
  name: '<db>',
  size: '--size',
  suspend_timeout_seconds: '--suspend-timeout',
  pool_mode: '--pool-mode',
  pool_size: '--pool-size',
  start_immediately: '--start',
};

const LIST_COLUMNS = [
  { heading: 'tenant', value: (d: Db) => d.tenant },
  { heading: 'name', value: (d: Db) => d.name },
  { heading: 'id', value: (d: Db) => d.id },
  { heading: 'state', value: (d: Db) => d.state },
  { heading: 'size', value: (d: Db) => d.current_profile },
  { heading: 'pool', value: (d: Db) => d.pool_mode },
  { heading: 'suspend after', value: (d: Db) => `${d.suspend_timeout_seconds}s` },
  { heading: 'created', value: (d: Db) => d.created_at },
];

const LIVE_COLUMNS = [
  { heading: 'connections', value: (l: DbLive) => l.client_connections },
  { heading: 'in flight', value: (l: DbLive) => l.checkouts_in_flight },
  { heading: 'waiting', value: (l: DbLive) => l.checkouts_waiting },
  { heading: 'open tx', value: (l: DbLive) => l.open_transactions },
  { heading: 'last wake', value: (l: DbLive) => (l.last_wake_seconds === null ? null : `${l.last_wake_seconds}s at ${l.last_wake_at}`) },
  {
    heading: 'last handoff',
    value: ({ last_handoff: h }: DbLive) => (h === null ? null : `${h.result}${h.reason ? ` (${h.reason})` : ''} ${h.from_profile ?? '?'}->${h.to_profile ?? '?'} at ${h.at}`),
  },
];

/** The lifecycle fields, then (on a describe) the live figures as a table. */
function describeDb(ctx: CommandContext, db: DescribedDb): void {
  if (ctx.json) return printJson(ctx, db);
  const { live, ...fields } = db;
  ctx.term.out(renderFields(Object.entries(fields)));
  if (live) ctx.term.out(`\n${renderTable(LIVE_COLUMNS, [live])}`);
}

/** `<tenant> <db>`, or one argument that is a db id. */
async function findDb(ctx: CommandContext): Promise<DescribedDb> {
  const [first, second] = ctx.args.positionals as [string, string | undefined];
  if (second !== undefined) return ctx.api.get<DescribedDb>(dbPath(first, second));
  if (!/^db-[a-z0-9]+$/.test(first)) throw new UsageError(`"${first}" is not a db id: give <tenant> <db>, or a db id (db-…)`);
  return ctx.api.get<DescribedDb>(`/v2/dbs/${first}`);
}

/** `pgwake dbs create|list|describe|delete`. */
export const dbCommands: Record<string, Command> = {
  create: {
    usage: 'pgwake dbs create <tenant> <db> [--size L1|L2|L4|L8] [--suspend-timeout <seconds>] [--pool-mode session|transaction] [--pool-size <n>] [--start] [--json]',
    summary: 'create a db (left suspended until its first connection; --start starts it now)',
    options: { size: { type: 'string' }, 'suspend-timeout': { type: 'string' }, 'pool-mode': { type: 'string' }, 'pool-size': { type: 'string' }, start: { type: 'boolean' } },
    positionals: { min: 2, max: 2, names: '<tenant> <db>' },
    async run(ctx) {
      const [tenant, name] = ctx.args.positionals as [string, string];
      const v = ctx.args.values;
      const body: Record<string, unknown> = { name };
      if (v.size !== undefined) body.size = v.size;
      if (v['pool-mode'] !== undefined) body.pool_mode = v['pool-mode'];
      const timeout = integerOption(v, 'suspend-timeout');
      if (timeout !== undefined) body.suspend_timeout_seconds = timeout;
      const poolSize = integerOption(v, 'pool-size');
      if (poolSize !== undefined) body.pool_size = poolSize;
      if (v.start) body.start_immediately = true;
      const db = await ctx.api.post<Db>(`${tenantPath(tenant)}/dbs`, body);
      if (ctx.json) printJson(ctx, db);
      else {
        ctx.term.out(`Db ${db.name} created in tenant ${db.tenant}: ${db.state}, ${db.current_profile}, id ${db.id}.`);
        ctx.term.out(`Connect with: psql "$(pgwake credentials ${db.tenant} --db ${db.name})"`);
      }
      return EXIT.ok;
    },
  },
  list: {
    usage: 'pgwake dbs list [<tenant>] [--json]',
    summary: "list a tenant's dbs, or every tenant's",
    positionals: { min: 0, max: 1, names: '[<tenant>]' },
    async run(ctx) {
      const [tenant] = ctx.args.positionals;
      let dbs: Db[];
      if (tenant !== undefined) dbs = (await ctx.api.get<{ dbs: Db[] }>(`${tenantPath(tenant)}/dbs`)).dbs;
      else {
        const { tenants } = await ctx.api.get<{ tenants: Tenant[] }>('/v2/tenants');
        dbs = [];
        for (const t of tenants) dbs.push(...(await ctx.api.get<{ dbs: Db[] }>(`${tenantPath(t.name)}/dbs`)).dbs);
      }
      if (ctx.json) printJson(ctx, { dbs });
      else if (dbs.length === 0) ctx.term.out(tenant === undefined ? 'No dbs yet.' : `No dbs in tenant ${tenant} yet. Create one with: pgwake dbs create ${tenant} <db>`);
      else ctx.term.out(renderTable(LIST_COLUMNS, dbs));
      return EXIT.ok;
    },
  },
  describe: {
    usage: 'pgwake dbs describe (<tenant> <db> | <db-id>) [--json]',
    summary: "every lifecycle field of a db (state, scale, profile handoff, pool, …), then its live figures: connections, checkouts in flight and waiting, last wake, last handoff",
    positionals: { min: 1, max: 2, names: '<tenant> <db>, or a db id' },
    async run(ctx) {
      describeDb(ctx, await findDb(ctx));
      return EXIT.ok;
    },
  },
  delete: {
    usage: 'pgwake dbs delete <tenant> <db> [--yes] [--json]',
    summary: 'delete a db and its data (asks to type the db name unless --yes)',
    options: { yes: { type: 'boolean', short: 'y' } },
    positionals: { min: 2, max: 2, names: '<tenant> <db>' },
    async run(ctx) {
      const [tenant, name] = ctx.args.positionals as [string, string];
      if (!ctx.args.values.yes) {
        if (!ctx.term.interactive) throw new UsageError(`deleting db ${name} removes its data: pass --yes to confirm`);
        const typed = await ctx.term.ask(`Deleting db ${name} in tenant ${tenant} removes its data for good. Type the db name to confirm: `);
        if (typed.trim() !== name) {
          ctx.term.err('pgwake: not deleted: the name typed did not match.');
          return EXIT.usage;
        }
      }
      const db = await ctx.api.delete<Db>(dbPath(tenant, name));
      if (ctx.json) printJson(ctx, db);
      else ctx.term.out(`Db ${db.name} is ${db.state}: its compute stops and its data is removed in the background.`);
      return EXIT.ok;
    },
  },
};
