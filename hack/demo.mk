# `make demo`: stateguard on a local control plane (hack/demo). Included by the
# top-level Makefile; uses K8S_ASSETS and HELM from hack/assets.mk and the
# `build` target (bin/stateguard).
#
# Targets
#   demo        start etcd + kube-apiserver + kube-controller-manager, run
#               `stateguard serve` with a fresh CA and serving certificate,
#               register the chart's webhook configurations, walk through
#               examples/ with kubectl (a mutation, a denial, warnings), then
#               keep the cluster running until Ctrl-C, which stops and removes
#               everything. First run from a fresh clone builds the control
#               plane from source (see hack/assets.mk), later runs start in ~15 s.
#   demo-ci     the same walkthrough, then stop and exit (no Ctrl-C wait);
#               fails if any step does not behave as shown
#   clean-demo  remove the demo binary (also run by `make clean`)
#
# Variables
#   DEMO_FLAGS  extra flags for hack/demo, e.g. DEMO_FLAGS=--kubectl=/path/to/kubectl

DEMO_BIN := bin/stateguard-demo
DEMO_STATEGUARD ?= $(or $(BIN),bin/stateguard)
DEMO_FLAGS ?=
DEMO_ARGS = --assets $(K8S_ASSETS) --helm $(HELM) --stateguard $(DEMO_STATEGUARD) \
	--examples examples --chart charts/stateguard $(DEMO_FLAGS)

.PHONY: demo demo-ci clean-demo demo-binary
demo: build k8s-assets helm demo-binary ## Try stateguard on a local control plane with kubectl (Ctrl-C stops it)
	@$(DEMO_BIN) $(DEMO_ARGS)

demo-ci: build k8s-assets helm demo-binary ## Run the demo walkthrough once, non-interactively
	@$(DEMO_BIN) $(DEMO_ARGS) --keep-running=false

demo-binary:
	GOTOOLCHAIN=local go build -o $(DEMO_BIN) ./hack/demo

clean-demo:
	rm -f $(DEMO_BIN)

clean: clean-demo
