import { Type, type Static } from '@sinclair/typebox';
import type { Config } from '../../core/index.js';
import { Nullable, Timestamp } from '../schemas.js';

/** Schemas of the API key routes. A key's secret appears only in the answer that made it. */

export const ApiKeySchema = Type.Object(
  {
    id: Type.String(),
    account_id: Type.String(),
    name: Nullable(Type.String()),
    prefix: Type.String({ description: 'The first characters of the key, to tell keys apart' }),
    created_at: Timestamp,
    last_used_at: Nullable(Timestamp),
    expires_at: Nullable({ ...Timestamp, description: 'When a rotated key stops working; null: no expiry' }),
    revoked_at: Nullable(Timestamp),
    replaced_by: Nullable(Type.String({ description: 'The id of the key that replaced this one by rotation' })),
  },
  { $id: 'ApiKey', title: 'ApiKey', additionalProperties: false },
);

const Secret = Type.String({ description: 'The API key, shown this once: only its hash is kept' });

export const NewApiKeySchema = Type.Object({ api_key: Secret, key: Type.Ref('ApiKey') }, { additionalProperties: false });

export const RotatedApiKeySchema = Type.Object(
  { api_key: Secret, key: Type.Ref('ApiKey'), previous: { ...Type.Ref('ApiKey'), description: 'The rotated key: it works until its expires_at' } },
  { additionalProperties: false },
);

export const AccountParams = Type.Object({ account: Type.String({ minLength: 1, maxLength: 100, description: 'Account id' }) }, { additionalProperties: false });
export type AccountParams = Static<typeof AccountParams>;

export const CreateApiKeyBody = Type.Object(
  { name: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'What the key is for (shown in the profile)' })) },
  { additionalProperties: false },
);
export type CreateApiKeyBody = Static<typeof CreateApiKeyBody>;

export function rotateBodySchema(config: Config) {
  return Type.Object(
    {
      grace_seconds: Type.Optional(
        Type.Integer({ minimum: 0, maximum: config.apiKeyRotationGraceSeconds, description: `How long the old key keeps working; default and most: ${config.apiKeyRotationGraceSeconds}` }),
      ),
    },
    { additionalProperties: false },
  );
}
export type RotateBody = { grace_seconds?: number };

export const RevokeBody = Type.Object(
  { key_id: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'The key to revoke; default: the key making the call' })) },
  { additionalProperties: false },
);
export type RevokeBody = Static<typeof RevokeBody>;
