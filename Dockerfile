# syntax=docker/dockerfile:1
# One image for every role of a Shoal cluster: SERVICES (api, users, media, site, processing) and
# PROCESSING_KINDS (image, video, audio) choose what a container runs. See README, "Run a cluster".

ARG NODE_IMAGE=node:22-bookworm-slim

# --- build: the server (tsc) and the web page (Vite), with the dev dependencies they need ---
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# A toolchain for native modules, used only where no prebuilt binary fits (sharp, better-sqlite3).
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build && npm run build:web

# --- the image: production dependencies, the built code, Debian's ffmpeg, a non-root user ---
FROM ${NODE_IMAGE}
# Debian's ffmpeg (security updates) is found on PATH before the static build bundled through npm.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# MALLOC_ARENA_MAX: glibc's malloc keeps what sharp's (libvips) threads free in an arena per thread, so a
# worker's RSS stayed ~100 MiB up after a burst of images; with two arenas it came back (bench/README.md, the soak).
ENV NODE_ENV=production \
    SHOAL_MODE=cluster \
    PORT=3000 \
    SHOAL_DATA_DIR=/var/lib/shoal \
    MALLOC_ARENA_MAX=2
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# The data directory holds temporary files only in cluster mode; under Kubernetes it is an emptyDir.
RUN mkdir -p /var/lib/shoal && chown node:node /var/lib/shoal && chmod 0700 /var/lib/shoal
# The `node` account of the base image (uid 1000); the code stays root-owned and read-only to it.
USER node
EXPOSE 3000
# Liveness: the api's /api/health/live, or, on a node without api, its metrics listener (METRICS_PORT);
# a node with neither has nothing to ask, and Docker watches the process alone.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 CMD ["node", "-e", "\
const services = (process.env.SERVICES || 'api').split(',').map((name) => name.trim());\
const target = services.includes('api') ? (process.env.PORT || '3000') + '/api/health/live'\
  : process.env.METRICS_PORT ? process.env.METRICS_PORT + '/metrics' : '';\
if (target === '') process.exit(0);\
fetch('http://127.0.0.1:' + target, { signal: AbortSignal.timeout(4000) })\
  .then((answer) => process.exit(answer.ok ? 0 : 1), () => process.exit(1));"]
# SIGTERM goes to node itself (exec form), which stops the node gracefully.
CMD ["node", "dist/server.js"]
