package main

import (
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/stateguard/stateguard/internal/report"
	"github.com/stateguard/stateguard/internal/version"
)

func newCheckCommand() *cobra.Command {
	var in inputFlags
	var output string
	c := &cobra.Command{
		Use:   "check [flags] PATH...",
		Short: "Check manifests against the policies, offline, as the admission webhooks would",
		Long: `Check reads Kubernetes manifests and runs on every StatefulSet what the
cluster would run: the mutating webhook first (storage classes, claim templates,
snapshot labels), then the validating one.

The input is treated as the cluster: Services, StorageClasses and Namespaces
(with their stateguard.dev/mode labels) found anywhere in it answer the
policies' lookups, in any order and across files. StorageClasses not in the
input come from the config's catalog (the profile's built-in classes).

PATH is a file, a directory (read recursively: *.yaml, *.yml, *.json) or - for
standard input. Multi-document YAML, JSON, flow-style YAML and kind: List are read,
with YAML 1.1 scalars resolved as kubectl resolves them.

Exit status: 0 no enforce-mode violation; 1 at least one; 2 usage error, or
input that cannot be read or parsed (the message names file:line).`,
		Example: `  # Check a directory of manifests
  stateguard check deploy/

  # Check a Helm chart's rendered output
  helm template my-db charts/postgres | stateguard check -

  # Machine-readable output for CI: JSON, SARIF (GitHub code scanning), JUnit
  stateguard check -o sarif manifests/ > stateguard.sarif

  # Check against EKS's classes, objects without a namespace in "prod"
  stateguard check --profile eks -n prod app.yaml`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError("no PATH given: name files, directories or - for standard input\nSee '%s --help'.", c.CommandPath())
			}
			if !slices.Contains(report.Formats, output) {
				return usageError("--output %q is not a format; use one of %s", output, joinNames(report.Formats))
			}
			return nil
		},
		RunE: func(c *cobra.Command, paths []string) error {
			_, outcome, err := in.run(c, paths)
			if err != nil {
				return err
			}
			if err := report.Write(c.OutOrStdout(), output, outcome.Report, report.Options{Version: version.Get()}); err != nil {
				return fmt.Errorf("writing the report: %w", err)
			}
			if outcome.Report.Summary.Violations > 0 {
				return &exitError{code: exitViolation}
			}
			return nil
		},
	}
	in.register(c)
	c.Flags().StringVarP(&output, "output", "o", "text", "output format: "+joinNames(report.Formats))
	return c
}
