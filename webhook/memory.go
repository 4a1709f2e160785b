package webhook

import (
	"context"
	"runtime/debug"

	"sigs.k8s.io/controller-runtime/pkg/cache"
)

// releaseAfterSync returns the memory of the informers' initial lists to the
// operating system once the caches are synced. Those lists arrive whole (a
// LIST of every Service in the cluster, before the transforms slim each
// object), so the heap peaks at several times what the caches keep: with
// 10,000 Services, ~80 MB of heap for ~15 MB live. The runtime would hand
// the freed pages back only gradually, over minutes; until then they count
// in the pod's resident memory.
func releaseAfterSync(ctx context.Context, c cache.Cache) {
	if c.WaitForCacheSync(ctx) {
		debug.FreeOSMemory()
	}
}
