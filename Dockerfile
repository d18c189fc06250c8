# syntax=docker/dockerfile:1
# Build stage: compile TypeScript and native addons (pg-native needs libpq-dev and a toolchain).
FROM node:20-bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ libpq-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
COPY workers ./workers
COPY test ./test
RUN npm ci && npx tsc -p tsconfig.json && npm prune --omit=dev

# Runtime stage: libpq for pg-native, jemalloc for sharp's allocation pattern, no toolchain.
# --build-arg WITH_FFMPEG=true adds ffmpeg for video stills (list video/* in thumbnails.types).
FROM node:20-bookworm-slim
ARG WITH_FFMPEG=false
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 libjemalloc2 tini $([ "$WITH_FFMPEG" = true ] && echo ffmpeg) \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data && chown node:node /data
ENV NODE_ENV=production \
    REPO_CONFIG=/data/media-repo.yaml \
    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json config.sample.yaml ./
COPY migrations ./migrations
USER node
VOLUME ["/data"]
EXPOSE 8000
# tini forwards SIGTERM to node (PID 1 would otherwise ignore it) so shutdown drains requests.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/src/launcher.cjs"]
