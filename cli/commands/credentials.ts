import type { Credentials } from '../api-types.js';
import { printJson, type Command } from '../command.js';
import { EXIT } from '../exit-codes.js';
import { renderFields } from '../table.js';
import { tenantPath } from './tenants.js';

/** `pgwake credentials <tenant> [--db <name>]`. */
export const credentialsCommand: Command = {
  usage: 'pgwake credentials <tenant> [--db <name>] [--json]',
  summary: "show a tenant's Postgres login again; with --db, print just the connection string for that db",
  options: { db: { type: 'string' } },
  positionals: { min: 1, max: 1, names: '<tenant>' },
  async run(ctx) {
    const tenant = ctx.args.positionals[0]!;
    const creds = await ctx.api.get<Credentials>(`${tenantPath(tenant)}/credentials`);
    const db = ctx.args.values.db as string | undefined;
    const dsn = db === undefined ? undefined : creds.dsn_template.replace('<db-name>', encodeURIComponent(db));
    if (ctx.json) printJson(ctx, dsn === undefined ? creds : { ...creds, dsn });
    else if (dsn !== undefined) ctx.term.out(dsn);
    else ctx.term.out(renderFields([['pg_user', creds.pg_user], ['pg_password', creds.pg_password], ['dsn_template', creds.dsn_template]]));
    return EXIT.ok;
  },
};
