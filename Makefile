# nemoclave — see README.md. Every tool the targets need is installed by the
# targets themselves (into .bin/ or from apt), so a fresh clone works.
SHELL      := /bin/bash
GO         ?= go
BIN        := $(CURDIR)/bin
TOOLS      := $(CURDIR)/.bin
export PATH := $(TOOLS):$(PATH)
export NEMOCLAVE_BIN_DIR := $(BIN)

PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
STATICCHECK_VERSION        := v0.8.2

PLUGINS := $(notdir $(wildcard plugins/*))
# Release builds are stripped (no symbol table, no DWARF): a third of the
# binary's size. Debug with `make build LDFLAGS=`.
LDFLAGS ?= -s -w
GOTEST_FLAGS ?= -race -count=1 -timeout 40m

.PHONY: all build build-k8s plugins image run test test-agents test-k8s test-unit test-security lint proto bench bench-quick fuzz e2e tools clean

all: build

## build: the nemoclave binary (local sandboxes, no Kubernetes client) and every first-party plugin into bin/
build: plugins
	$(GO) build -ldflags='$(LDFLAGS)' -o $(BIN)/nemoclave ./host/cmd/nemoclave
	$(GO) build -ldflags='$(LDFLAGS)' -o $(BIN)/nemoclave-pluginbox ./sandbox/pluginbox/cmd/nemoclave-pluginbox
	CGO_ENABLED=0 $(GO) build -ldflags='$(LDFLAGS)' -o $(BIN)/nemoclave-sandbox-init ./sandbox/local/cmd/nemoclave-sandbox-init
	ln -sf nemoclave $(BIN)/openshell

## build-k8s: bin/nemoclave-k8s, nemoclave with the kubernetes sandbox driver and the Secret
## credential backend (-tags kubernetes); the container image and test-k8s use it
build-k8s: plugins
	$(GO) build -tags kubernetes -ldflags='$(LDFLAGS)' -o $(BIN)/nemoclave-k8s ./host/cmd/nemoclave

## plugins: each plugins/<kind>-<name> as bin/nemoclave-plugin-<kind>-<name>
plugins:
	@mkdir -p $(BIN)
	@for p in $(PLUGINS); do \
		echo "go build plugins/$$p"; \
		$(GO) build -ldflags='$(LDFLAGS)' -o $(BIN)/nemoclave-plugin-$$p ./plugins/$$p || exit 1; \
	done

## image: the daemon/gateway image and the sandbox base image as OCI archives in out/image/, built
## offline on scratch from static binaries (deploy/image), each with a CycloneDX SBOM (.cdx.json)
## and a cosign-format signature of its manifest (.manifest.sig; key IMAGE_KEY, made when missing).
## IMAGE is the one place the images are named: $(IMAGE):<version> and $(IMAGE)-sandbox:<version>.
IMAGE     ?= ghcr.io/nemoclave/nemoclave
IMAGE_DIR ?= $(CURDIR)/out/image
IMAGE_KEY ?= $(IMAGE_DIR)/cosign.key
IMAGE_CA  ?= /etc/ssl/certs/ca-certificates.crt
image:
	@mkdir -p $(IMAGE_DIR)/bin
	cp $(IMAGE_CA) $(IMAGE_DIR)/ca-certificates.crt
	CGO_ENABLED=0 $(GO) build -tags kubernetes -ldflags='$(LDFLAGS)' -o $(IMAGE_DIR)/bin/nemoclave ./host/cmd/nemoclave
	@for p in $(PLUGINS); do \
		echo "go build (static) plugins/$$p"; \
		CGO_ENABLED=0 $(GO) build -ldflags='$(LDFLAGS)' -o $(IMAGE_DIR)/bin/nemoclave-plugin-$$p ./plugins/$$p || exit 1; \
	done
	$(GO) run ./deploy/image/cmd/nemoclave-image -bin $(IMAGE_DIR)/bin -out $(IMAGE_DIR) -image $(IMAGE) -key $(IMAGE_KEY) -ca-bundle $(IMAGE_DIR)/ca-certificates.crt

## run: build everything and run the quickstart blueprint on embedded defaults
run: build
	$(BIN)/nemoclave run examples/quickstart/blueprint.hcl

## test: every test, with the race detector, including the example plugin in its own module and
## e2e TestAgents (Codex, Claude Code and OpenClaw from npm, installed by scripts/install-agents.sh)
test: build
	@# After the run no plugin socket (nor plugin socket or testupstream directory) may be left in the
	@# temp dir: scripts/tmp-leaks.sh check fails the run if any is (TMPLEAKS_STRICT=0 only reports them,
	@# for a machine where unrelated runs of the same user share the temp dir). TMPLEAKS_PER_PACKAGE=FILE runs each
	@# package with its own temp dir and names in FILE the packages that left a socket (scripts/pkg-tmpdir.sh).
	scripts/tmp-leaks.sh start $(BIN)/.test-started
	@# Debian's Python gRPC for the Python example plugin (host/plugins TestPythonPlugin).
	if ! /usr/bin/python3 -c 'import grpc, google.protobuf, cryptography' 2>/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update && apt-get install -y python3-grpcio python3-protobuf python3-cryptography; \
		else echo "make test: not root, so the Python plugin test skips unless python3-grpcio, python3-protobuf and python3-cryptography are installed" >&2; fi; fi
	@# The real agent CLIs for e2e TestAgents, pinned and cached in ~/.cache/nemoclave/agents.
	bash scripts/install-agents.sh >/dev/null
	@# PostgreSQL 15 and PGlite+pgvector for the memory-postgres and retrieval-pgvector tests,
	@# started here as .ci/run does (root only: the cluster runs as the postgres user), unless
	@# the caller already exported them.
	if [ -z "$${NEMOCLAVE_TEST_POSTGRES_URL:-}" ] && [ "$$(id -u)" = 0 ]; then . scripts/test-postgres.sh || exit 1; \
	elif [ -z "$${NEMOCLAVE_TEST_POSTGRES_URL:-}" ]; then echo "make test: not root, so the PostgreSQL/pgvector tests skip (run as root, or export NEMOCLAVE_TEST_POSTGRES_URL and NEMOCLAVE_TEST_PGVECTOR_URL)" >&2; fi; \
	NEMOCLAVE_TEST_AGENTS=1 $(GO) test $(GOTEST_FLAGS) $${TMPLEAKS_PER_PACKAGE:+-exec $(CURDIR)/scripts/pkg-tmpdir.sh} ./... ./sdk/...
	cd examples/tools-wordcount && GOWORK=off $(GO) test $(GOTEST_FLAGS) ./...
	scripts/tmp-leaks.sh check $(BIN)/.test-started

## test-agents: only e2e TestAgents (also part of `make test`): Codex, Claude Code and OpenClaw, as
## released on npm (pinned, installed into ~/.cache/nemoclave/agents by scripts/install-agents.sh,
## Node 26 included), each run inside a sandbox through the gateway
test-agents: build
	bash scripts/install-agents.sh >/dev/null
	NEMOCLAVE_TEST_AGENTS=1 NEMOCLAVE_BIN_DIR=$(BIN) $(GO) test $(GOTEST_FLAGS) -timeout 45m -v -run 'TestAgents' ./e2e/

## test-k8s: the kubernetes driver, the Secret credential backend and deploy/ against a real
## kube-apiserver + etcd on loopback (scripts/k8s-testenv.sh; the first run builds kube-apiserver)
## then `nemoclave run` of a driver = "kubernetes" blueprint against it (scripts/k8s-acceptance.sh),
## and the corporate-proxy tests against a real squid (scripts/test-squid.sh installs it);
## host/controller runs daemon replicas (bin/nemoclave-k8s): TestCRD_* (AgentEnvironment) and TestHA_* (leader Lease;
## replicas sharing PostgreSQL state, which is started here as in `make test`)
test-k8s: build build-k8s
	bash scripts/test-squid.sh
	$(GO) test $(GOTEST_FLAGS) -run 'TestUpstreamProxy' ./host/runtime/ ./gateway/egress/
	@# TestHA_InspectedEgressOnEveryReplica runs replicas on one PostgreSQL state: started as in `make test`.
	if [ -z "$${NEMOCLAVE_TEST_POSTGRES_URL:-}" ] && [ "$$(id -u)" = 0 ]; then . scripts/test-postgres.sh || exit 1; fi; \
	bash scripts/k8s-testenv.sh run -- bash -c '$(GO) test -tags kubernetes $(GOTEST_FLAGS) ./sandbox/kubernetes/... ./host/credentials/... ./host/cli/... ./host/daemon/serve/... ./host/controller/... ./deploy/... && bash scripts/k8s-acceptance.sh'

## test-security: the sandbox escape catalogue only
test-security: build
	$(GO) test -race -count=1 -v -run Escape ./sandbox/... ./gateway/... ./blueprints/...

tools:
	@mkdir -p $(TOOLS)
	@test -x $(TOOLS)/protoc-gen-go || GOBIN=$(TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	@test -x $(TOOLS)/protoc-gen-go-grpc || GOBIN=$(TOOLS) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	@test -x $(TOOLS)/staticcheck || GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

## lint: gofmt, go vet and staticcheck over every module
lint: tools
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./... ./sdk/...
	staticcheck ./... ./sdk/...
	cd examples/tools-wordcount && GOWORK=off $(GO) vet ./... && GOWORK=off staticcheck ./...

## proto: regenerate sdk/internal/pb and host/api/daemonpb (protoc from apt)
proto: tools
	@command -v protoc >/dev/null || (apt-get update && apt-get install -y protobuf-compiler)
	rm -rf sdk/internal/pb
	cd sdk/proto && protoc --go_out=.. --go_opt=module=github.com/nemoclave/nemoclave/sdk \
		--go-grpc_out=.. --go-grpc_opt=module=github.com/nemoclave/nemoclave/sdk \
		$$(find . -name '*.proto' | sort)
	rm -f host/api/daemonpb/*.pb.go
	protoc --go_out=. --go_opt=module=github.com/nemoclave/nemoclave \
		--go-grpc_out=. --go-grpc_opt=module=github.com/nemoclave/nemoclave \
		host/api/daemon.proto

## bench: performance benchmarks side by side with their peers; writes bench/out/summary.json
## (one entry per performance target) and the generated summary section of BENCHMARKS.md
bench: build
	./bench/run.sh

## bench-quick: a short version of every benchmark (fewer rounds, smaller data sets), same outputs as bench
bench-quick: build
	QUICK=1 ./bench/run.sh

## fuzz: each fuzz target for FUZZTIME (default 30s)
fuzz:
	./bench/fuzz.sh

## e2e: end-to-end tests only
e2e: build
	$(GO) test $(GOTEST_FLAGS) -v ./e2e/...

clean:
	rm -rf $(BIN)
