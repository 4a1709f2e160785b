# The Helm chart (charts/stateguard), the plain manifests rendered from it
# (deploy/), and the container image. Included by the top-level Makefile after
# hack/assets.mk; also usable on its own:
#
#   make -f hack/chart.mk chart-test deploy-manifests
#
# Targets
#   chart-lint        helm lint --strict, default values and every test/chart/testdata/values-*.yaml
#   chart-test        go test ./test/chart/ (lint, render + strict decode, server-side
#                     dry-run apply on a real kube-apiserver, helm install/upgrade, the
#                     helm-test logic against the real webhook, Dockerfile checks)
#   deploy-manifests  regenerate deploy/stateguard.yaml from the chart
#                     (test/chart fails when the two drift apart)
#   image             build $(IMAGE):$(VERSION) with docker or podman
#   image-push        push it
#
# Variables
#   IMAGE             image name without tag (default stateguard/stateguard, the
#                     chart's image.repository default)
#   CONTAINER_ENGINE  docker or podman (default: whichever is on PATH, docker first)

_CHART_SAVED_DEFAULT_GOAL := $(.DEFAULT_GOAL)

CHART_REPO_ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)

# HELM and K8S_ASSETS come from hack/assets.mk; include it when used standalone.
ifndef ASSETS_REPO_ROOT
include $(CHART_REPO_ROOT)/hack/assets.mk
endif

VERSION ?= $(shell git -C $(CHART_REPO_ROOT) describe --tags --always --dirty 2>/dev/null || echo devel)
IMAGE ?= stateguard/stateguard
CONTAINER_ENGINE ?= $(shell command -v docker 2>/dev/null || command -v podman 2>/dev/null)

CHART_DIR := $(CHART_REPO_ROOT)/charts/stateguard

.PHONY: chart-lint chart-test deploy-manifests image image-push

chart-lint: helm ## helm lint --strict the chart with every test value set
	$(HELM) lint --strict $(CHART_DIR)
	@set -e; for f in $(CHART_REPO_ROOT)/test/chart/testdata/values-*.yaml; do \
		echo "== $$f"; $(HELM) lint --strict $(CHART_DIR) -f $$f; done

chart-test: helm k8s-assets ## Chart tests (lint, render, dry-run apply on a real API server, helm test logic)
	cd $(CHART_REPO_ROOT) && GOTOOLCHAIN=local HELM=$(HELM) KUBEBUILDER_ASSETS=$(K8S_ASSETS) \
		STATEGUARD_REQUIRE_INTEGRATION=1 go test -count=1 -timeout 10m ./test/chart/

deploy-manifests: helm ## Regenerate deploy/stateguard.yaml from the chart
	cd $(CHART_REPO_ROOT) && GOTOOLCHAIN=local HELM=$(HELM) UPDATE_GOLDEN=1 \
		go test -count=1 -run '^TestDeployManifestsUpToDate$$' ./test/chart/

image: ## Build the container image $(IMAGE):$(VERSION) (docker or podman)
	@test -n "$(CONTAINER_ENGINE)" || { echo "make image needs docker or podman on PATH (or CONTAINER_ENGINE=...)"; exit 1; }
	$(CONTAINER_ENGINE) build --build-arg VERSION=$(VERSION) -t $(IMAGE):$(VERSION) $(CHART_REPO_ROOT)

image-push: ## Push $(IMAGE):$(VERSION)
	@test -n "$(CONTAINER_ENGINE)" || { echo "make image-push needs docker or podman on PATH (or CONTAINER_ENGINE=...)"; exit 1; }
	$(CONTAINER_ENGINE) push $(IMAGE):$(VERSION)

.DEFAULT_GOAL := $(_CHART_SAVED_DEFAULT_GOAL)
