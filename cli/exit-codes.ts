/** What `pgwake <tenants|dbs|credentials>` exits with, so scripts can tell outcomes apart. */
export const EXIT = {
  ok: 0,
  /** The API refused the request or failed (its error is printed). */
  apiError: 1,
  /** Bad arguments, or no API URL / key configured. */
  usage: 2,
  /** The control API could not be reached. */
  unreachable: 3,
  /** The API key was missing, wrong, revoked or expired (401). */
  unauthorized: 4,
  /** What was asked for does not exist in this account (404). */
  notFound: 5,
} as const;
