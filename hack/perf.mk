# Performance measurements of the webhook. Included by the top-level
# Makefile after hack/assets.mk (which defines K8S_ASSETS and HELM); on a
# fresh clone run `make k8s-assets helm` first (the targets below also depend
# on them, a no-op once built).
#
# Targets
#   bench-webhook   in-process benchmarks: AdmissionReview bytes in, response
#                   bytes out, through the handlers as `stateguard serve` mounts
#                   them (BenchmarkAdmission, webhook/handlers_bench_test.go);
#                   also over loopback HTTPS (BenchmarkAdmissionHTTPS) and, for
#                   reference, with controller-runtime's own review decoding
#                   (BenchmarkAdmissionServeHTTP); PERF_COUNT runs each,
#                   summarized by benchstat
#   load            hack/loadgen against the real `stateguard serve` (envtest
#                   API server behind its informers): max rate, then 500/s
#                   (test/load TestLoadHTTPS)
#   perf-apiserver  through the real kube-apiserver: StatefulSet create
#                   latency with the chart's webhooks vs. none, and the
#                   webhook's RSS with 10,000 Services and 200 StorageClasses
#                   cached (test/load TestAPIServerCreateLatency, TestWebhookMemory)
#
# The load tests run only with STATEGUARD_LOAD=1 (set here), so `make test`
# skips them. Figures depend on the machine and on what else runs on it:
# each run prints the load average beside them, and cpu-ns/op (CPU time per
# review) is steadier than ns/op on a busy machine. A missed target fails
# `load` and `perf-apiserver`.
#
# Variables
#   PERF_COUNT      benchmark repetitions (default 6, the fewest benchstat gives a 95% interval for)
#   PERF_BENCHTIME  -benchtime of each repetition (default 1s)
#   PERF_OUT        where bench-webhook keeps its raw output (default bin/perf)
#   STATEGUARD_LOAD_DURATION  measured time of each load run (default 20s)
#   STATEGUARD_LOAD_CONNS     connections at max rate (default 4)
#   STATEGUARD_LOAD_CREATES   creates counted per mode in perf-apiserver (default 200)

PERF_COUNT ?= 6
PERF_BENCHTIME ?= 1s
PERF_OUT ?= bin/perf
BENCHSTAT ?= go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
PERF_ENV = STATEGUARD_LOAD=1 KUBEBUILDER_ASSETS=$(K8S_ASSETS) HELM=$(HELM) GOTOOLCHAIN=local

.PHONY: bench-webhook load perf-apiserver

bench-webhook: ## In-process admission benchmarks (validate, mutate, Service guard), PERF_COUNT runs, benchstat
	@mkdir -p $(PERF_OUT)
	@echo "loadavg before: $$(cut -d' ' -f1-3 /proc/loadavg)"
	GOTOOLCHAIN=local go test -run='^$$' -bench='^BenchmarkAdmission' -benchmem -benchtime=$(PERF_BENCHTIME) -count=$(PERF_COUNT) ./webhook/ > $(PERF_OUT)/bench-webhook.txt; status=$$?; cat $(PERF_OUT)/bench-webhook.txt; exit $$status
	@echo "loadavg after: $$(cut -d' ' -f1-3 /proc/loadavg)"
	$(BENCHSTAT) $(PERF_OUT)/bench-webhook.txt

load: k8s-assets helm ## HTTPS load on the real `stateguard serve` (hack/loadgen): max rate and 500/s
	$(PERF_ENV) go test -count=1 -timeout 20m -run '^TestLoadHTTPS$$' -v ./test/load/

perf-apiserver: k8s-assets helm ## Through kube-apiserver: create latency with/without the webhooks; RSS with 10k Services
	$(PERF_ENV) go test -count=1 -timeout 30m -run '^(TestAPIServerCreateLatency|TestWebhookMemory)$$' -v ./test/load/
