#!/bin/sh
# Runs `pgwake <command>` as the container's main process (signals reach it directly).
# PGWAKE_SECRET_KEY_FILE: read the shared secret key from a file (a Docker secret, or the
# compose file's keygen volume) when PGWAKE_SECRET_KEY itself is not set.
set -eu
if [ -z "${PGWAKE_SECRET_KEY:-}" ] && [ -n "${PGWAKE_SECRET_KEY_FILE:-}" ]; then
  if [ ! -r "$PGWAKE_SECRET_KEY_FILE" ]; then
    echo "pgwake: PGWAKE_SECRET_KEY_FILE=$PGWAKE_SECRET_KEY_FILE cannot be read" >&2
    exit 2
  fi
  PGWAKE_SECRET_KEY=$(cat "$PGWAKE_SECRET_KEY_FILE")
  export PGWAKE_SECRET_KEY
fi
cd /app
exec node --import tsx bin/pgwake.ts "$@"
