import { readFileSync } from 'node:fs';
import { chown } from 'node:fs/promises';

/** The OS identity Postgres processes run as. Postgres refuses to run as root, so root hands them to an unprivileged user. */
export interface ProcessOwner {
  uid: number;
  gid: number;
  name: string;
}

export function processOwnerFor(osUser: string): ProcessOwner | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.split(':')[0] === osUser);
  if (!line) throw new Error(`PGWAKE_COMPUTE_OS_USER: no OS user "${osUser}" (pgwake runs as root and must hand Postgres to an unprivileged user)`);
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid), name: osUser };
}

export async function giveTo(owner: ProcessOwner | undefined, path: string): Promise<void> {
  if (owner) await chown(path, owner.uid, owner.gid);
}
