package main

import (
	"github.com/spf13/cobra"

	"github.com/stateguard/stateguard/internal/check"
	"github.com/stateguard/stateguard/internal/config"
	"github.com/stateguard/stateguard/internal/manifest"
	"github.com/stateguard/stateguard/policies"
)

// inputFlags are the flags check and mutate share: which config, and how to
// read the manifests.
type inputFlags struct {
	config    string
	profile   string
	namespace string
}

func (f *inputFlags) register(c *cobra.Command) {
	c.Flags().StringVar(&f.config, "config", "", "PolicyConfig file (default: the built-in profile's defaults)")
	c.Flags().StringVar(&f.profile, "profile", "", "built-in platform defaults: "+joinNames(policies.ProfileNames())+" (overrides the config's profile; default aks)")
	c.Flags().StringVarP(&f.namespace, "namespace", "n", "default", "namespace of objects that do not set metadata.namespace")
}

// run reads the config and the manifests and checks them. Any error here is a
// usage or input error: exit 2.
func (f *inputFlags) run(c *cobra.Command, paths []string) ([]*manifest.Document, *check.Outcome, error) {
	engine, err := config.Load(config.Options{Path: f.config, Profile: f.profile})
	if err != nil {
		return nil, nil, &exitError{code: exitUsage, err: err}
	}
	docs, err := manifest.Read(paths, manifest.Options{Stdin: c.InOrStdin()})
	if err != nil {
		return nil, nil, &exitError{code: exitUsage, err: err}
	}
	outcome, err := check.Run(docs, check.Options{Engine: engine, Namespace: f.namespace})
	if err != nil {
		return nil, nil, &exitError{code: exitUsage, err: err}
	}
	return docs, outcome, nil
}

func joinNames(names []string) string {
	out := ""
	for i, n := range names {
		if i > 0 {
			out += ", "
		}
		out += n
	}
	return out
}
