# syntax=docker/dockerfile:1

# ---- build: install everything, compile, then drop dev dependencies ----
# Node 24, an LTS line supported until April 2028 (Node 20's support ended in April 2026). The code
# also runs on Node 20.19+ (development machines), so it uses no API newer than that.
FROM node:24-bookworm-slim AS build
WORKDIR /app

# `npm install`, not `npm ci`: the lockfile lacks other-platform binaries, and `npm ci` refuses
# it. `npm install` still respects the lockfile.
COPY package.json package-lock.json ./
RUN npm install --no-audit --no-fund

COPY tsconfig*.json nest-cli.json ./
COPY apps ./apps
COPY libs ./libs
# Both apps: dist/apps/api/apps/api/src/main.js (the default command) and
# dist/apps/gateway-sim/apps/gateway-sim/src/main.js (the simulator; docker-compose's gateway service).
# The seat-map page's script is bundled first (esbuild, a dev dependency) into dist/page/seat-map.js.
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund

# ---- runtime: production dependencies and compiled output only, non-root ----
FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app

COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist

USER node
# 3000: the API; 4010: the gateway simulator, when it is the command (docker-compose's gateway).
EXPOSE 3000 4010

HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:3000/health/live').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# The same command as `npm start`, heap cap included (docs/benchmarks.md, "Peak RSS").
CMD ["node", "--max-old-space-size=160", "dist/apps/api/apps/api/src/main.js"]
