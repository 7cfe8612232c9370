import { Type, type Static } from '@sinclair/typebox';
import { Nullable, Timestamp } from '../schemas.js';

/** Schemas of the billing summary. */

const Seconds = Type.Number({ description: 'Compute-seconds: seconds a writer ran, to the millisecond' });
const ByProfile = Type.Record(Type.String(), Seconds, { description: 'Compute-seconds by profile (L1, L2, …)' });

export const BillingQuery = Type.Object(
  {
    from: Type.Optional(Type.String({ format: 'date-time', description: 'Start of the period (inclusive); default: the start of the current month (UTC)' })),
    to: Type.Optional(Type.String({ format: 'date-time', description: 'End of the period (exclusive); default: now' })),
  },
  { additionalProperties: false },
);
export type BillingQuery = Static<typeof BillingQuery>;

export const BillingSummarySchema = Type.Object(
  {
    from: Timestamp,
    to: Timestamp,
    compute_seconds: Seconds,
    by_profile: ByProfile,
    dbs: Type.Array(
      Type.Object(
        {
          db_id: Type.String(),
          tenant: Nullable(Type.String()),
          db: Nullable(Type.String({ description: 'Db name (kept after the db is deleted)' })),
          compute_seconds: Seconds,
          by_profile: ByProfile,
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
