/** Resource names: what a user types in URLs and what Postgres accepts as a database name. */
export const RESOURCE_NAME_PATTERN = '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$';
const RESOURCE_NAME = new RegExp(RESOURCE_NAME_PATTERN);

/** Returns why `name` is not a valid resource name, or null when it is. */
export function resourceNameProblem(name: string): string | null {
  if (name.length < 1 || name.length > 63) return 'must be 1 to 63 characters long';
  if (!/^[a-z0-9-]+$/.test(name)) return 'may contain only lowercase letters, digits and hyphens';
  if (name.startsWith('-') || name.endsWith('-')) return 'must not start or end with a hyphen';
  if (!RESOURCE_NAME.test(name)) return 'is not a valid name';
  return null;
}
