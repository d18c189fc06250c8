# syntax=docker/dockerfile:1
# Build stage: compile TypeScript and native addons (pg-native needs libpq-dev and a toolchain),
# then drop the dev dependencies so that node_modules can be copied as it is.
FROM node:20-bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ libpq-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
COPY workers ./workers
# npm ci runs the prepare script (tsc) too; the explicit tsc keeps the build honest if that
# script ever changes. test/ is not copied, so no tests are compiled into the image.
RUN npm ci --no-audit --no-fund && npx tsc -p tsconfig.json && npm prune --omit=dev

# Runtime stage: libpq for pg-native, jemalloc for sharp's allocation pattern, tini as PID 1,
# no toolchain; the external decoders: libheif's heif-convert (HEVC-coded HEIC), libjxl's djxl
# (JPEG XL), bubblewrap (their fence) and ffmpeg (video and audio; list video/* and audio/* in
# thumbnails.types). --build-arg WITH_FFMPEG=false leaves ffmpeg out (about 150 MB).
FROM node:20-bookworm-slim
ARG WITH_FFMPEG=true
# The jemalloc link gives LD_PRELOAD one path on amd64 and arm64 alike.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 libjemalloc2 tini \
      libheif-examples libjxl-tools bubblewrap $([ "$WITH_FFMPEG" = true ] && echo ffmpeg) \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s "$(dpkg -L libjemalloc2 | grep '/libjemalloc\.so\.2$')" /usr/local/lib/libjemalloc.so.2 \
 && test -e /usr/local/lib/libjemalloc.so.2 \
 && mkdir -p /data && chown node:node /data
ENV NODE_ENV=production \
    REPO_CONFIG=/data/media-repo.yaml \
    LD_PRELOAD=/usr/local/lib/libjemalloc.so.2
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# package.json marks dist/ as ES modules and carries the version; migrations/ is read at
# start-up from beside dist/; the sample is there to copy (see README, Docker).
COPY package.json config.sample.yaml ./
COPY migrations ./migrations
COPY assets ./assets
USER node
# Config, embedded database and file datastores: relative paths in the config resolve here, so
# the sample's data/db and data/media land on the volume.
WORKDIR /data
VOLUME ["/data"]
# 8000: repo.port (bind 0.0.0.0 in the config). 9000: MMR's metrics.port, for when metrics ship;
# nothing listens there in this build.
EXPOSE 8000 9000
# Node as PID 1 gets no default signal handling and reaps no orphans (ffmpeg children). tini
# from Debian is PID 1 instead: it forwards SIGTERM and SIGHUP to node alone, so node drains
# its requests first, and it reaps zombies. It is in the image so that a plain `docker run`
# (or Kubernetes, which has no --init) is right; -s keeps it correct under --init too.
ENTRYPOINT ["/usr/bin/tini", "-s", "--"]
CMD ["node", "/app/dist/src/launcher.cjs"]
# Liveness from /healthz, at the port and address the config names (src/healthcheck.ts). The
# start period covers the embedded database's first initialisation.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 CMD ["node", "/app/dist/src/healthcheck.js"]
