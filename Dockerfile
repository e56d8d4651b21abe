# syntax=docker/dockerfile:1
# One image for every Lockstep component. The long-running ones run as bundles built by
# scripts/build.ts, each with a launcher that sets its Node flags:
#   /app/dist/bin/lockstep-controller, /app/dist/bin/lockstep-webhook, /app/dist/bin/lockstep-agent;
# the CLI runs from source: /app/bin/lockstep.
# Not built in CI here (no container engine on these machines); `make lint` checks this file.

ARG NODE_IMAGE=node:24.21.0-bookworm-slim

# Production dependencies only: no compiler, test runner or linter reaches the image. `npm ci`: exactly
# the lock file, which must be complete and agree with package.json (test/unit/package-lock.test.ts).
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts \
    && npm cache clean --force

# The components' bundles: esbuild is a build-time dependency only.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund \
    && npm cache clean --force
COPY scripts ./scripts
COPY src ./src
COPY node-agent ./node-agent
RUN node scripts/build.ts

# The node agent's audit reader (native/audit-reader, Go, docs/adr/0038): static, no cgo, built the way
# scripts/native.ts builds it (`make native`), so the same source gives the same bytes.
FROM golang:1.26-bookworm AS native
WORKDIR /src
COPY native ./
ARG TARGETARCH
RUN CGO_ENABLED=0 GOARCH=${TARGETARCH} GOTOOLCHAIN=local GOFLAGS=-mod=readonly \
    go build -trimpath -buildvcs=false -ldflags=-buildid= -o /out/lockstep-audit-reader ./audit-reader

FROM ${NODE_IMAGE} AS runtime
# apparmor_parser for the node agent, which loads AppArmor profiles on nodes that have AppArmor;
# the other components never call it. setpriv and prlimit (util-linux, with the libraries they link:
# libcap-ng0, libsmartcols1) run each parser under its own limits and tie it to the agent's life
# (node-agent/parser-runner.ts); the base image has them already, and `make image`, which installs
# only the packages named here, needs them named. jemalloc for the webhook, whose launcher preloads it
# (its memory after a burst of reviews: scripts/build.ts).
RUN apt-get update \
    && apt-get install -y --no-install-recommends apparmor util-linux libcap-ng0 libsmartcols1 libjemalloc2 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY src ./src
COPY node-agent ./node-agent
COPY crds ./crds
COPY --from=build /app/dist ./dist
COPY --from=native /out/lockstep-audit-reader /usr/local/bin/lockstep-audit-reader
ENV NODE_ENV=production PATH=/app/bin:$PATH
# A numeric non-root user, so Kubernetes can check runAsNonRoot without reading /etc/passwd.
# The agent's DaemonSet overrides it with root (and no capabilities beyond what it needs), because
# the kubelet's seccomp folder on the node is owned by root.
USER 65532:65532
ENTRYPOINT ["/app/bin/lockstep"]
CMD ["--help"]
