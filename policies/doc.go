// Package policies is stateguard's policy engine: the three stateful-workload
// policies (headless-service, storage-class, snapshot-schedule), the config
// that tunes them, and the mode resolution that turns a policy's findings into
// a decision.
//
// Everything here is a pure, deterministic function of its inputs: the object
// under review, the old object on UPDATE, the config, and a read-only Lookup.
// There is no I/O, no client-go and no controller-runtime, so the admission
// webhook (which looks things up in informer caches) and the offline CLI
// (which looks them up in the manifest bundle) reach the same decision on the
// same objects. Inputs are never modified: mutations return a changed copy.
package policies
