# Fault and soak testing of `stateguard serve`. Included by the top-level
# Makefile after hack/assets.mk (which defines K8S_ASSETS and HELM); also
# usable on its own:
#
#   make -f hack/soak.mk nginx soak SOAK_DURATION=2m
#
# Targets
#   nginx   /usr/sbin/nginx for test/faults' rolling-restart test (two replicas
#           behind a local nginx): installs Debian's nginx with apt-get, only if
#           it is missing and we run as root (as CI does); otherwise it says so
#           and succeeds, and that test skips (fails with
#           STATEGUARD_REQUIRE_INTEGRATION=1, as under `make test`). A no-op
#           once nginx is there. The package's service is never started by the
#           test, which runs its own nginx in the foreground on 127.0.0.1.
#   soak    SOAK_DURATION (default 10m) at SOAK_RATE (default 1000) reviews/s
#           over HTTPS against the real `stateguard serve` (hack/loadgen, fixed
#           rate, one run a minute): no error, p99 per minute stable (each under
#           250ms, no upward drift from the first half of the run to the
#           second), RSS and goroutines (sampled every 10s from /metrics) grow
#           at most 10% after the first minute, open fds do not grow; then
#           SOAK_CREATES (default 10000) StatefulSet creates through the real
#           kube-apiserver with both webhooks: zero errors, and
#           stateguard_admission_decisions_total adds up to exactly the requests
#           made. Prints a summary table. Not part of `make test` (test/soak
#           skips without STATEGUARD_SOAK=1).
#
# Variables
#   NGINX          the nginx binary the tests use (default /usr/sbin/nginx)
#   SOAK_DURATION  measured time of the HTTPS soak (Go duration, default 10m)
#   SOAK_RATE      reviews/s of the HTTPS soak (default 1000)
#   SOAK_CREATES   StatefulSet creates through the API server (default 10000)

_SOAK_SAVED_DEFAULT_GOAL := $(.DEFAULT_GOAL)

SOAK_REPO_ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)

# HELM and K8S_ASSETS come from hack/assets.mk; include it when used standalone.
ifndef ASSETS_REPO_ROOT
include $(SOAK_REPO_ROOT)/hack/assets.mk
endif

NGINX ?= /usr/sbin/nginx
SOAK_DURATION ?= 10m
SOAK_RATE ?= 1000
SOAK_CREATES ?= 10000

.PHONY: nginx soak

nginx: ## Install nginx (Debian package) for test/faults if missing and root; else the test skips
	@if [ -x "$(NGINX)" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
		echo "nginx: $(NGINX) is missing and this is not root with apt-get: test/faults' rolling-restart test will skip (or fail under STATEGUARD_REQUIRE_INTEGRATION=1)"; \
		exit 0; \
	fi; \
	install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nginx-light </dev/null || \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nginx </dev/null; }; \
	install || { apt-get update -q </dev/null && install; } || \
		echo "nginx: apt-get could not install nginx: test/faults' rolling-restart test will skip (or fail under STATEGUARD_REQUIRE_INTEGRATION=1)"; \
	true

soak: k8s-assets helm ## Soak: SOAK_DURATION (10m) at SOAK_RATE (1000) reviews/s over HTTPS, then SOAK_CREATES (10k) creates via the API server
	cd $(SOAK_REPO_ROOT) && STATEGUARD_SOAK=1 SOAK_DURATION=$(SOAK_DURATION) SOAK_RATE=$(SOAK_RATE) SOAK_CREATES=$(SOAK_CREATES) \
		KUBEBUILDER_ASSETS=$(K8S_ASSETS) HELM=$(HELM) STATEGUARD_REQUIRE_INTEGRATION=1 GOTOOLCHAIN=local \
		go test -count=1 -timeout 0 -run '^TestSoak' -v ./test/soak/

.DEFAULT_GOAL := $(_SOAK_SAVED_DEFAULT_GOAL)
