import type { CreatedTenant, Tenant } from '../api-types.js';
import { printJson, type Command } from '../command.js';
import { EXIT } from '../exit-codes.js';
import { renderFields, renderTable } from '../table.js';

const path = (name: string) => `/v2/tenants/${encodeURIComponent(name)}`;

/** `pgwake tenants create|list`. */
export const tenantCommands: Record<string, Command> = {
  create: {
    usage: 'pgwake tenants create <name> [--json]',
    summary: 'create a tenant and its Postgres login (prints the password and a DSN template)',
    positionals: { min: 1, max: 1, names: '<name>' },
    async run(ctx) {
      const name = ctx.args.positionals[0]!;
      const created = await ctx.api.post<CreatedTenant>('/v2/tenants', { name });
      if (ctx.json) printJson(ctx, created);
      else {
        ctx.term.out(`Tenant ${created.tenant.name} created.\n`);
        ctx.term.out(renderFields([['pg_user', created.pg_user], ['pg_password', created.pg_password], ['dsn_template', created.dsn_template]]));
        ctx.term.out(`\nShow them again with: pgwake credentials ${created.tenant.name}`);
      }
      return EXIT.ok;
    },
  },
  list: {
    usage: 'pgwake tenants list [--json]',
    summary: "list the account's tenants",
    positionals: { min: 0, max: 0, names: 'no arguments' },
    async run(ctx) {
      const { tenants } = await ctx.api.get<{ tenants: Tenant[] }>('/v2/tenants');
      if (ctx.json) printJson(ctx, { tenants });
      else if (tenants.length === 0) ctx.term.out('No tenants yet. Create one with: pgwake tenants create <name>');
      else
        ctx.term.out(
          renderTable(
            [
              { heading: 'name', value: (t) => t.name },
              { heading: 'pg_user', value: (t) => t.pg_user },
              { heading: 'id', value: (t) => t.id },
              { heading: 'created', value: (t) => t.created_at },
            ],
            tenants,
          ),
        );
      return EXIT.ok;
    },
  },
};

export { path as tenantPath };
