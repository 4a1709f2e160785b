package main

import (
	"os"
	"runtime/debug"

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
	setMemoryBudget()
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

// setMemoryBudget keeps the GC's headroom small. Left alone it lets the heap
// grow to twice the live data, doubling the peak RSS of a batch run that lives
// a fraction of a second (CI runners with tight memory pay for that); 25%
// headroom costs a few more collections and scales with the input, unlike a
// fixed limit, which would thrash on large inputs. A GOGC or GOMEMLIMIT the
// user set always wins.
func setMemoryBudget() {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetGCPercent(25)
}
