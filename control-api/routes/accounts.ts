import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, onRequestHookHandler } from 'fastify';
import type { RoleContext } from '../../core/index.js';
import { ApiError } from '../errors.js';
import { errorResponses, Nullable, Timestamp } from '../schemas.js';

const SignUpBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200, description: 'Who the account is for (a person or an organisation)' }),
    email: Type.Optional(Type.String({ format: 'email', maxLength: 254 })),
  },
  { additionalProperties: false },
);
type SignUpBody = Static<typeof SignUpBody>;

export const AccountSchema = Type.Object(
  { id: Type.String(), name: Type.String(), email: Nullable(Type.String()), created_at: Timestamp },
  { $id: 'Account', title: 'Account', additionalProperties: false },
);

const SignedUpSchema = Type.Object(
  {
    account: Type.Ref('Account'),
    api_key: Type.String({ description: 'The API key, shown this once: only its hash is kept' }),
    api_key_id: Type.String(),
    api_key_prefix: Type.String({ description: 'The first characters of the key, to tell keys apart' }),
  },
  { additionalProperties: false },
);

/** Sign-up: the one route without an API key (closable with PGWAKE_SIGNUP=closed). */
export async function accountRoutes(app: FastifyInstance, { ctx, signUpLimit }: { ctx: RoleContext; signUpLimit: onRequestHookHandler }): Promise<void> {
  app.post<{ Body: SignUpBody }>(
    '/v2/accounts',
    {
      schema: {
        tags: ['accounts'],
        summary: 'Sign up: create an account and its first API key',
        body: SignUpBody,
        response: { 201: SignedUpSchema, ...errorResponses(400, 403, 429) },
      },
      // Refuse before reading the body: a closed sign-up says so whatever was sent.
      onRequest: [
        async () => {
          if (ctx.config.signup === 'closed') throw new ApiError(403, 'signup_closed', 'sign-up is closed on this deployment; ask its operator for an account');
        },
        signUpLimit,
      ],
    },
    async (request, reply) => {
      const { account, apiKey } = await ctx.catalog.accounts.create({ name: request.body.name, email: request.body.email ?? null });
      request.log.info({ account_id: account.id, key_prefix: apiKey.record.prefix }, 'account created');
      return reply.status(201).send({ account, api_key: apiKey.key, api_key_id: apiKey.record.id, api_key_prefix: apiKey.record.prefix });
    },
  );
}
