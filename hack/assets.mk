# Test assets built from source through the Go module proxy (no other
# downloads needed): a Kubernetes control plane for envtest (test/cluster) and
# helm. Included by the top-level Makefile; also usable on its own:
#
#   make -f hack/assets.mk k8s-assets helm
#
# Targets
#   k8s-assets  $(K8S_ASSETS)/{kube-apiserver,kube-controller-manager,etcd}
#               cold (2 cores, empty caches): ~8 min, ~4.5 GB of Go build
#               cache; with a warm build cache (fresh clone): ~20 s
#   helm        $(HELM)  (cold ~1 min)
#   clean-assets  removes bin/k8s, bin/helm and the wrapper modules
# Both build targets are plain file targets: a no-op once the binaries exist.
# Binaries land under bin/ (git-ignored), in a directory named after the
# version, so bumping a version below builds the new one next to the old.
#
# Variables (export KUBEBUILDER_ASSETS=$(K8S_ASSETS) for `go test`)
#   K8S_ASSETS  absolute path of the directory holding the control plane
#   HELM        absolute path of the helm binary

# Keep whatever default goal the including Makefile has (or will have);
# used on its own (`make -f hack/assets.mk`), default to k8s-assets.
_ASSETS_SAVED_DEFAULT_GOAL := $(.DEFAULT_GOAL)
ifeq ($(words $(MAKEFILE_LIST)),1)
_ASSETS_SAVED_DEFAULT_GOAL := k8s-assets
endif

ASSETS_REPO_ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)

K8S_VERSION ?= 1.33.13
ETCD_VERSION ?= 3.5.24
HELM_VERSION ?= v3.22.0

K8S_ASSETS := $(ASSETS_REPO_ROOT)/bin/k8s/$(K8S_VERSION)
HELM := $(ASSETS_REPO_ROOT)/bin/helm/$(HELM_VERSION)/helm

K8S_ASSET_BINS := $(K8S_ASSETS)/kube-apiserver $(K8S_ASSETS)/kube-controller-manager $(K8S_ASSETS)/etcd

.PHONY: k8s-assets helm clean-assets
k8s-assets: $(K8S_ASSET_BINS)
helm: $(HELM)

# One grouped rule: both binaries come from one `go build` (shared packages
# compile once), and `make -j` must not start that build twice.
$(K8S_ASSETS)/kube-apiserver $(K8S_ASSETS)/kube-controller-manager &:
	GOTOOLCHAIN=local bash $(ASSETS_REPO_ROOT)/hack/build-k8s-assets.sh $(K8S_ASSETS) $(K8S_VERSION) $(ETCD_VERSION) kube

$(K8S_ASSETS)/etcd:
	GOTOOLCHAIN=local bash $(ASSETS_REPO_ROOT)/hack/build-k8s-assets.sh $(K8S_ASSETS) $(K8S_VERSION) $(ETCD_VERSION) etcd

$(HELM):
	GOTOOLCHAIN=local bash $(ASSETS_REPO_ROOT)/hack/build-helm.sh $(HELM) $(HELM_VERSION)

clean-assets:
	rm -rf $(ASSETS_REPO_ROOT)/bin/k8s $(ASSETS_REPO_ROOT)/bin/helm $(ASSETS_REPO_ROOT)/bin/.build

.DEFAULT_GOAL := $(_ASSETS_SAVED_DEFAULT_GOAL)
