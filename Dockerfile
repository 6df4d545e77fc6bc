# syntax=docker/dockerfile:1
# Flock node image. Build: `docker build -t flock .`; run with every backing
# service configured (FLOCK_DEV_SERVICES=off), see docker-compose.yml.
#
# Node 24 LTS on Debian 12 (bookworm, glibc 2.36). The uWebSockets.js build in
# package.json has binaries for Node 16/18/20 only, so in this image a node
# runs Socket.IO's ws engine on node:http: SOCKET_ENGINE=auto falls back with
# one warning and flock_socket_engine{engine="ws"} 1 (README "Runtime").
# `--build-arg NODE_VERSION=20` builds the uWS image (Node 20 ends April 2026).
ARG NODE_VERSION=24

# ---- build: install dependencies (honouring package.json allowScripts) ----
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
# npm 11 reads the allowScripts field (Node 24 ships it); Node 20's npm 10 ignores it, so it is upgraded there.
RUN case "$(npm --version)" in 1[1-9].*) ;; *) npm install -g npm@11 ;; esac && npm --version
COPY package.json package-lock.json ./
RUN npm ci && npm cache clean --force
# Whole tree (minus .dockerignore): source directories may be empty or new.
COPY . .
# The runtime needs tsx (a dependency) but none of the devDependencies.
# Optional dependencies stay: they carry esbuild's and ffmpeg-installer's platform binaries.
RUN npm prune --omit=dev

# ---- runtime ----
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
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
