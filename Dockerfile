# syntax=docker/dockerfile:1
# Flock node image. Build: `docker build -t flock .`; run with every backing
# service configured (FLOCK_DEV_SERVICES=off), see docker-compose.yml.

# ---- build: install dependencies (honouring package.json allowScripts) ----
FROM node:20-bookworm-slim AS build
WORKDIR /app
# node:20 ships npm 10, which ignores the allowScripts field; npm 11 reads it.
RUN npm install -g npm@11 && npm --version
COPY package.json package-lock.json ./
RUN npm ci && npm cache clean --force
# Whole tree (minus .dockerignore): source directories may be empty or new.
COPY . .
# The runtime needs tsx (a dependency) but none of the devDependencies.
# Optional dependencies stay: they carry esbuild's and ffmpeg-installer's platform binaries.
RUN npm prune --omit=dev

# ---- runtime ----
FROM node:20-bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg tini \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    FLOCK_DEV_SERVICES=off \
    HOST=0.0.0.0 \
    PORT=3000
WORKDIR /app
COPY --from=build --chown=node:node /app /app
# The `node` user (uid 1000) comes with the official image.
USER node
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# tini forwards SIGTERM to node so the graceful shutdown in server/main.ts runs.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "--import", "tsx", "server/main.ts"]
