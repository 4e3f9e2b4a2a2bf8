# go-service: the chart, its render and lint suites, and the tools they need.
# Every target installs what it needs itself (idempotently): `make test` works on a fresh machine.

SHELL       := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
GO          ?= go
BIN         := $(CURDIR)/bin
CHART       := charts/go-service
KUBE_VERSION ?= 1.34.0
export PATH := $(BIN):/usr/local/go/bin:$(PATH)

# The tools are pinned by the `tool` directives in go.mod and built from the module cache.
TOOLS := $(BIN)/helm $(BIN)/helm3 $(BIN)/ct $(BIN)/helm-docs $(BIN)/testlog $(BIN)/registry
# helm is Helm 4 (the primary CLI); helm3 is Helm 3, still supported. Both are built with the version
# details Helm's own release builds stamp in (Helm 3 takes its default Kubernetes version from them).
TOOL_PKG_helm      := helm.sh/helm/v4/cmd/helm
TOOL_PKG_helm3     := helm.sh/helm/v3/cmd/helm
TOOL_LDFLAGS_helm   = $(shell $(GO) run ./internal/cmd/toolflags helm 2>/dev/null)
TOOL_LDFLAGS_helm3  = $(shell $(GO) run ./internal/cmd/toolflags helm3 2>/dev/null)
TOOL_PKG_ct        := github.com/helm/chart-testing/v3/ct
TOOL_PKG_helm-docs := github.com/norwoodj/helm-docs/cmd/helm-docs
TOOL_PKG_testlog   := ./internal/cmd/testlog
$(BIN)/testlog: $(wildcard internal/cmd/testlog/*.go)
# The CNCF Distribution registry (the chart's OCI tests) is pinned in its own module, tools/registry.
$(BIN)/registry: tools/registry/go.mod tools/registry/go.sum
	cd tools/registry && $(GO) build -o $@ github.com/distribution/distribution/v3/cmd/registry
	@touch $@

APT_PACKAGES := yamllint chromium

NODES ?= 1
CYCLES ?= 10

# Every suite runs through testlog, which records each test's result (a skipped test with its reason)
# in results/tests.jsonl for the summary at the end of `make test`. $(call gotest,SUITE,FLAGS AND
# PACKAGES); V=1 prints every test's output, as go test -v.
RECORD := $(CURDIR)/results/tests.jsonl
gotest = $(GO) test -json $(2) 2>&1 | $(BIN)/testlog $(if $(V),-v) -record $(RECORD) -suite $(1)

.PHONY: all help deps tools render test test-render test-lint lint schema package release docs golden bench fuzz clean \
	cluster-up cluster-down cluster-status cluster-build cluster-soak test-live test-teardown test-unit e2e e2e-repeat examples demo test-demo

all: test

help: ## List the targets.
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

deps: tools ## Install the apt packages and build the pinned Go tools (idempotent).
	@missing=(); for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing+=($$p); done; \
	if [ $${#missing[@]} -gt 0 ]; then \
	  echo "installing $${missing[*]} with apt-get"; \
	  if [ "$$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi; \
	  { $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq "$${missing[@]}" >/dev/null; } || \
	    { echo "deps: could not install $${missing[*]} with apt-get (root and Debian's repositories are needed); install them and run make again" >&2; exit 1; }; \
	fi

tools: $(TOOLS) ## Build helm (Helm 4), helm3, ct, helm-docs, testlog and the registry into bin/.

$(BIN)/%: go.mod go.sum
	$(GO) build -ldflags '$(TOOL_LDFLAGS_$*)' -o $@ $(TOOL_PKG_$*)
	@touch $@

render: tools ## Render the chart with its defaults for KUBE_VERSION (default 1.34.0) and print the manifests.
	helm template go-service $(CHART) --kube-version $(KUBE_VERSION)

test: ## Everything CI runs, stage by stage, each timed; ends with the stage times, what was skipped and why, and the counts.
	@scripts/test-stages.sh

test-render: tools ## The render suite (with the race detector): the kit (render, rules, check) and the chart's renders, values, refusals, golden files, dependency chart.
	@$(call gotest,render,-race -count=1 ./render/... ./rules/... ./check/... ./test/render/... ./test/chart/...)

test-unit: tools ## Unit tests (with the race detector): the cluster harness, the graceful package, the load generator, the reference service's proxy, the gates, the disruption kit, testlog, the kernel's TCP record (no cluster; tcptrace's tracefs test needs root).
	@$(call gotest,unit,-race -count=1 ./cluster/... ./graceful/... ./cmd/go-service/ ./load/... ./gate/... ./disrupt/... ./internal/... ./tcptrace/...)

test-lint: deps ## helm lint --strict, ct lint and the values-docs check, as Go tests.
	@$(call gotest,lint,-count=1 ./test/lint/...)

lint: deps test-lint ## test-lint plus go vet and gofmt.
	$(GO) vet ./...
	cd examples/hello && $(GO) vet ./...
	@out=$$(gofmt -l test cluster cmd graceful load internal render rules check gate disrupt examples demo); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

schema: ## Regenerate the io.k8s.* definitions of charts/go-service/values.schema.json from the Kubernetes (cluster/hk) and Gateway API OpenAPI definitions.
	$(GO) run ./internal/cmd/schemagen

package: tools ## Build the versioned chart archive into dist/ (helm package).
	helm package $(CHART) -d dist

release: tools ## Add the chart's current version to the chart repository chart-repo/ (archive and index.yaml); TestChartVersionPolicy then freezes it.
	@v=$$(sed -n 's/^version: //p' $(CHART)/Chart.yaml); if [ -e chart-repo/go-service-$$v.tgz ]; then echo "go-service $$v is already released"; exit 1; fi
	helm package $(CHART) -d chart-repo
	helm repo index chart-repo --merge chart-repo/index.yaml

docs: tools ## Regenerate charts/go-service/README.md from values.yaml (helm-docs).
	helm-docs --chart-search-root charts --sort-values-order file --skip-version-footer

FUZZTIME ?= 3m
fuzz: ## Explore the chart's values with the fuzz target for FUZZTIME (default 3m); go test runs only its seeds.
	$(GO) test -run '^$$' -fuzz FuzzValues -fuzztime $(FUZZTIME) -parallel 2 ./test/chart

golden: ## Rewrite the golden files from the current chart (review the diff).
	$(GO) test -count=1 ./test/chart -run 'TestGolden' -update

bench: tools ## Render benchmark: the kit (chart loaded once), the Helm SDK per render and the helm CLI, per render, with the speed-up (cli/kit).
	$(GO) test -count=1 ./test/chart -run '^$$' -bench 'BenchmarkRender' -benchtime 5x

cluster-up: ## Start the local cluster, or keep a healthy one (NODES=2 for two nodes). Needs root.
	$(GO) run ./cmd/cluster up --nodes $(NODES)

cluster-down: ## Stop the local cluster and remove everything it created.
	$(GO) run ./cmd/cluster down

cluster-status: ## Show the local cluster's components and health.
	$(GO) run ./cmd/cluster status

cluster-build: ## Build the cluster's components and images (cached in ~/.cache/go-service; no root).
	$(GO) run ./cmd/cluster build

cluster-soak: ## CYCLES (default 10) of: 1-node up, 2-node up, a pod per node serving through a Service, down, residue check.
	$(GO) run ./cmd/cluster soak --cycles $(CYCLES)

test-live: tools ## The live smoke suite on KUBECONFIG's cluster, or on the local cluster (started if needed).
	@GO_SERVICE_NODES=$(NODES) $(call gotest,smoke-$(NODES),-count=1 -v -timeout 30m ./test/smoke/...) -v

# The Helm 3 lane: the core scenarios again, deployed with Helm 3 (bin/helm3 as helm on PATH).
HELM3_LANE := ^(TestHelmLane|TestRollingUpdate|TestUpgradeFromPreviousChart|TestBadRelease)$$

e2e: tools ## The zero-downtime live suite with Helm 4, then its Helm 3 lane (which runs even when the suite failed; KUBECONFIG's cluster, or a 2-node local cluster); reports in results/live and results/live-helm3.
	@status=0; \
	GO_SERVICE_NODES=2 $(call gotest,e2e,-count=1 -v -timeout 60m -parallel $(E2E_PARALLEL) ./test/live/...) -v || status=1; \
	GO_SERVICE_NODES=2 GO_SERVICE_HELM=helm3 GO_SERVICE_RESULTS=$(CURDIR)/results/live-helm3 \
	  $(call gotest,e2e-helm3,-count=1 -v -timeout 20m -parallel $(E2E_PARALLEL) -run '$(HELM3_LANE)' ./test/live/) -v || status=1; \
	exit $$status

# E2E_PARALLEL: how many of the scenarios that may run beside each other (concurrent) run at once; 2 is
# not yet green on a 2-core machine (README, "Scenarios side by side").
E2E_PARALLEL ?= 1
N   ?= 3
RUN ?=
e2e-repeat: tools ## The live suite N times in a row (RUN= a test pattern, default all; on make's command line a $ in it is written $$), each run's reports in results/live-repeat/<i>; a line per run, and exit 1 if any failed.
	@fails=0; for i in $$(seq 1 $(N)); do \
	  start=$$(date +%s); \
	  if GO_SERVICE_NODES=2 GO_SERVICE_RESULTS=$(CURDIR)/results/live-repeat/$$i \
	    $(call gotest,e2e-repeat-$$i,-count=1 -v -timeout 60m -parallel $(E2E_PARALLEL) $(if $(RUN),-run '$(RUN)') ./test/live/) -v; \
	  then verdict=passed; else verdict=FAILED; fails=$$((fails+1)); fi; \
	  echo "e2e-repeat: run $$i of $(N) $$verdict in $$(( $$(date +%s) - start ))s (results/live-repeat/$$i)"; \
	done; \
	echo "e2e-repeat: $$fails of $(N) run(s) failed$(if $(RUN), (RUN=$(RUN)))"; [ $$fails -eq 0 ]

demo: deps ## The main job: the usual setup and go-service side by side through a rolling update, a node drain and an eviction under load; a verdict table and results/demo/index.html. Leaves the cluster running.
	@$(GO) test -count=1 -v -timeout 45m -run 'TestDemo$$' ./demo/ | grep --line-buffered -vE '^ *=== (RUN|PAUSE|CONT)'

test-demo: deps ## The demo as CI runs it (recorded with the other suites, its namespace deleted at the end), with the page check's own control.
	@GO_SERVICE_DEMO_CLEANUP=1 $(call gotest,demo,-count=1 -v -timeout 45m ./demo/...) -v

examples: tools ## The example service repositories under examples/ (chart pushed to a loopback registry, dependency update, their own go test, a rollout under load on the local cluster).
	@GO_SERVICE_NODES=2 $(call gotest,examples,-count=1 -v -timeout 30m ./test/examples/...) -v

test-teardown: tools ## Stop the local cluster (started if none runs) and fail on anything left behind.
	@$(call gotest,teardown,-count=1 -v -timeout 15m ./test/teardown/...) -v

clean: ## Remove built tools.
	rm -rf $(BIN)
