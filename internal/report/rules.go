package report

import "github.com/stateguard/stateguard/policies"

// informationURI is stateguard's home page; each policy's page is below it.
const informationURI = "https://stateguard.dev"

// ruleDoc is what code-scanning tools show about a policy.
type ruleDoc struct {
	// Name is a PascalCase identifier, as SARIF recommends for rule names.
	Name  string
	Short string
	Full  string
	// Help says how to fix a finding.
	Help string
}

// ruleDocs describes every registered policy; a test checks that none is
// missing. The texts follow the product contract's policy sections.
var ruleDocs = map[policies.PolicyID]ruleDoc{
	policies.HeadlessService: {
		Name:  "HeadlessService",
		Short: "A StatefulSet needs a headless Service that selects its pods.",
		Full: "A StatefulSet's pods get stable DNS names only through a headless Service that selects them. " +
			"spec.serviceName must name a Service in the StatefulSet's namespace with clusterIP: None and a non-empty " +
			"selector whose every key/value appears in the pod template's labels. A Service without " +
			"publishNotReadyAddresses: true is a warning: clustered databases need peer DNS before they are ready.",
		Help: "Create a Service with clusterIP: None, named as spec.serviceName, in the same namespace, " +
			"whose selector matches spec.template.metadata.labels.",
	},
	policies.StorageClass: {
		Name:  "StorageClass",
		Short: "Claim templates need a StorageClass that can serve them.",
		Full: "Each volumeClaimTemplate's StorageClass must exist, be allowed by the config, and have a provisioner " +
			"that supports the template's access modes and volumeMode; otherwise pods stay Pending and the failure " +
			"shows only in events. An empty storageClassName (static binding) is denied unless the config allows it. " +
			"reclaimPolicy: Delete, volumeBindingMode: Immediate on a zonal disk, allowVolumeExpansion not true " +
			"and a persistentVolumeClaimRetentionPolicy that deletes claims are warnings.",
		Help: "Name a StorageClass whose provisioner serves the template's access modes (a shared-file class for " +
			"ReadWriteMany/ReadOnlyMany, a disk class for ReadWriteOnce), or leave storageClassName out to get the mapped default.",
	},
	policies.SnapshotSchedule: {
		Name:  "SnapshotSchedule",
		Short: "A StatefulSet must name the snapshot schedule that protects its data.",
		Full: "A StatefulSet's metadata.labels must carry the stateguard.dev/snapshot-schedule label (the key is " +
			"configurable) whose value is one of the configured schedule names (by default hourly, daily, weekly), " +
			"never a cron string. The label is copied to every claim template so that label-selecting snapshot " +
			"tools pick up the claims.",
		Help: "Add the label stateguard.dev/snapshot-schedule with a configured schedule name, e.g. daily.",
	},
}

// helpURI is the page documenting a policy.
func helpURI(policy string) string {
	return informationURI + "/policies/" + policy
}
