import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { INTERNAL_SUPERUSER, type SecretBox } from '../secrets.js';
import { freePort, giveTo, initDataDir, PostgresServer, type ProcessOwner } from '../postgres/index.js';

export interface EmbeddedCatalog {
  url: string;
  server: PostgresServer;
  stop(): Promise<void>;
}

/**
 * The catalog as a Postgres of its own under `<dataDir>/catalog`, from the same
 * binaries as the computes. Its superuser's password is derived from the secret
 * key, so a restart finds it again without storing another secret.
 */
export async function startEmbeddedCatalog(o: { dataDir: string; binDir: string; owner: ProcessOwner | undefined; secrets: SecretBox; startTimeoutMs: number; onLog?: (line: string) => void }): Promise<EmbeddedCatalog> {
  const root = path.join(o.dataDir, 'catalog');
  const dataDir = path.join(root, 'data');
  const password = o.secrets.internalRolePassword('catalog');
  await mkdir(root, { recursive: true });
  await giveTo(o.owner, root);
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    await initDataDir({ binDir: o.binDir, dataDir, owner: o.owner, superuser: INTERNAL_SUPERUSER, superuserPassword: password });
  }
  const port = await freePort();
  const server = await PostgresServer.start({
    binDir: o.binDir,
    dataDir,
    host: '127.0.0.1',
    port,
    owner: o.owner,
    startTimeoutMs: o.startTimeoutMs,
    settings: { max_connections: '100', shared_buffers: '32MB' },
    onLog: o.onLog,
  });
  const url = `postgres://${INTERNAL_SUPERUSER}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
  return { url, server, stop: () => server.stop('fast') };
}
