# stateguard — run `make help` for the targets.
SHELL := /bin/bash
export GOTOOLCHAIN := local

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -s -w -X github.com/stateguard/stateguard/internal/version.Version=$(VERSION)
BIN := bin/stateguard
FUZZTIME ?= 30s
BENCH_FILES ?= 2000

.DEFAULT_GOAL := help

include hack/assets.mk
include hack/chart.mk
include hack/demo.mk
include hack/perf.mk
include hack/soak.mk

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/stateguard (static, version stamped)
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/stateguard

.PHONY: test
test: lint k8s-assets helm nginx ## Run every test: unit, golden, integration (real kube-apiserver + kubectl), chart
	KUBEBUILDER_ASSETS=$(K8S_ASSETS) HELM=$(HELM) STATEGUARD_REQUIRE_INTEGRATION=1 \
		go test -count=1 -timeout 30m ./...

.PHONY: test-unit
test-unit: ## Run the tests that need no control plane
	go test -count=1 ./policies/... ./internal/... ./cmd/...

.PHONY: lint
lint: ## gofmt and go vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	go vet ./...

.PHONY: golden
golden: ## Regenerate golden files (review the diff before committing)
	UPDATE_GOLDEN=1 go test -count=1 ./...

.PHONY: bench
bench: ## Go benchmarks (engine, reader, CLI pipeline, admission handlers)
	go test -run='^$$' -bench=. -benchmem ./policies/... ./internal/... ./webhook/...

.PHONY: bench-cli
bench-cli: build ## Time `stateguard check -o json` over a generated corpus of $(BENCH_FILES) files (wall, peak RSS)
	go run ./hack/benchcli -bin $(BIN) -files $(BENCH_FILES)

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME (default 30s)
	@set -e; grep -rl --include='*_test.go' '^func Fuzz' . | while read f; do \
		pkg=./$$(dirname $${f#./}); \
		for t in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$f | sed 's/^func //'); do \
			echo "== $$pkg $$t ($(FUZZTIME))"; go test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=100x $$pkg; \
		done; done

.PHONY: clean
clean: ## Remove build output (keeps the cached control plane; see clean-assets)
	rm -f $(BIN)
