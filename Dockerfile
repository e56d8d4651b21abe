# syntax=docker/dockerfile:1
# One image for every Lockstep component; each has a small entrypoint in bin/:
#   lockstep-controller, lockstep-webhook, lockstep-agent, lockstep (the CLI).
# Not built in CI here (no container engine on these machines); `make lint` checks this file.

ARG NODE_IMAGE=node:24.21.0-bookworm-slim

# Production dependencies only: no compiler, test runner or linter reaches the image.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm install --omit=dev --no-audit --no-fund --ignore-scripts \
    && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
# apparmor_parser for the node agent, which loads AppArmor profiles on nodes that have AppArmor;
# the other components never call it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends apparmor \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY src ./src
COPY node-agent ./node-agent
COPY crds ./crds
ENV NODE_ENV=production PATH=/app/bin:$PATH
# A numeric non-root user, so Kubernetes can check runAsNonRoot without reading /etc/passwd.
# The agent's DaemonSet overrides it with root (and no capabilities beyond what it needs), because
# the kubelet's seccomp folder on the node is owned by root.
USER 65532:65532
ENTRYPOINT ["/app/bin/lockstep"]
CMD ["--help"]
