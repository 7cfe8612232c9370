import { Type, type TSchema } from '@sinclair/typebox';
import { RESOURCE_NAME_PATTERN } from '../core/index.js';

/** Schemas every route group shares: names, nullables and the error shape. */

export const ResourceName = (description: string) =>
  Type.String({
    minLength: 1,
    maxLength: 63,
    pattern: RESOURCE_NAME_PATTERN,
    description: `${description}: 1–63 lowercase letters, digits and hyphens, not starting or ending with a hyphen`,
  });

export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

export const Timestamp = Type.String({ format: 'date-time' });

export const ErrorBodySchema = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'Stable, machine-readable: not_found, conflict, invalid_request, unauthorized, …' }),
      message: Type.String({ description: 'What went wrong, for people' }),
      details: Type.Any({ description: 'More about the error (e.g. `fields` for invalid requests), or null' }),
    }),
  },
  { $id: 'Error', title: 'Error' },
);

const ERROR_MEANING: Record<number, string> = {
  400: 'The request is invalid; `details.fields` says which field and why',
  401: 'Missing or invalid API key',
  403: 'Not allowed',
  404: 'No such resource in this account',
  409: 'The resource exists already, or its state does not allow this',
  422: 'The Idempotency-Key was used for a different request',
  429: 'Too many requests: wait `Retry-After` seconds',
  503: 'Something the request needs is unavailable (the autoscaler, the catalog)',
  504: 'The autoscaler did not finish in time',
};

/** Response schemas for the errors a route can answer with (documentation; the shape is always ErrorBody). */
export function errorResponses(...statuses: number[]): Record<number, unknown> {
  const out: Record<number, unknown> = {};
  for (const s of statuses) out[s] = { ...Type.Ref('Error'), description: ERROR_MEANING[s] ?? 'Error' };
  return out;
}

export const BEARER = [{ apiKey: [] as string[] }];
