// Command stateguard enforces stateful-workload policy on Kubernetes: as
// admission webhooks (serve) and offline over manifest files (check, mutate),
// with one policy engine behind both.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// Exit codes, part of the CLI contract: CI pipelines branch on them.
const (
	exitOK        = 0
	exitViolation = 1
	exitUsage     = 2
)

// exitError carries an exit code out of a command.
type exitError struct {
	code int
	err  error // nil: the command already said what it had to
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func usageError(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes the CLI and returns its exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCommand(stdin, stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			printError(stderr, ee.err)
		}
		return ee.code
	}
	// cobra's own errors: unknown command or flag, wrong arguments.
	printError(stderr, err)
	fmt.Fprintf(stderr, "See '%s --help'.\n", root.CommandPath())
	return exitUsage
}

// printError prints each joined error on its own line, kubectl-style.
func printError(w io.Writer, err error) {
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		for _, e := range joined.Unwrap() {
			printError(w, e)
		}
		return
	}
	fmt.Fprintf(w, "error: %s\n", err)
}

func newRootCommand(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "stateguard",
		Short: "Policy for stateful workloads on Kubernetes: headless Services, storage classes, snapshot schedules",
		Long: `stateguard makes sure every StatefulSet gets what a database needs from the
cluster: a headless Service for stable pod DNS, persistent volumes of a
StorageClass that can serve them, and a snapshot schedule for its data.

It runs the same policies in two places:
  - in the cluster, as mutating and validating admission webhooks (serve);
  - offline, over manifest files, for dry-run validation in CI (check, mutate).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError("%s\nSee '%s --help'.", err, c.CommandPath())
	})
	root.AddCommand(newCheckCommand(), newMutateCommand(), newServeCommand(), newVersionCommand())
	return root
}
