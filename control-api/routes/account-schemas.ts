import { Type, type Static } from '@sinclair/typebox';

/** Schemas of the caller's own account: profile, contact details, deletion. */

export const ProfileSchema = Type.Object(
  {
    account: Type.Ref('Account'),
    api_keys: Type.Array(Type.Ref('ApiKey'), { description: 'Keys that work now, those in a rotation grace period included' }),
    tenants: Type.Integer({ description: 'How many tenants the account has' }),
  },
  { additionalProperties: false },
);

export const ContactBody = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'Who the account is for' })),
    email: Type.Optional(Type.Union([Type.String({ format: 'email', maxLength: 254 }), Type.Null()], { description: 'Where to reach the account; null clears it' })),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type ContactBody = Static<typeof ContactBody>;

export const DeleteAccountBody = Type.Object(
  { confirm: Type.String({ minLength: 1, maxLength: 100, description: "The account's id, to say that this account is meant" }) },
  { additionalProperties: false },
);
export type DeleteAccountBody = Static<typeof DeleteAccountBody>;

export const DeletingAccountSchema = Type.Object(
  {
    account: Type.Ref('Account'),
    state: Type.Literal('deleting'),
    tenants: Type.Array(Type.String(), { description: 'Names of the tenants being deleted' }),
    dbs: Type.Array(Type.Ref('Db'), { description: 'The dbs being deleted, as they are now' }),
  },
  { additionalProperties: false },
);
