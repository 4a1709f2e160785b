package main

import (
	"bytes"
	"io"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	"github.com/spf13/cobra"

	"github.com/stateguard/stateguard/internal/check"
	"github.com/stateguard/stateguard/internal/manifest"
)

func newMutateCommand() *cobra.Command {
	var in inputFlags
	var diff bool
	c := &cobra.Command{
		Use:   "mutate [flags] PATH...",
		Short: "Print manifests with the mutating webhook's changes applied",
		Long: `Mutate prints the input documents as a YAML stream, with the changes the
mutating webhook would make on CREATE: storage classes filled in from access
modes, claim templates for dangling volumeMounts, and the snapshot-schedule
label copied onto claim templates. Documents it does not change are printed
exactly as they were, comments included.

It reads PATH and the config as check does, and never writes to the input files.
Use --diff to see only what changes, as a unified diff.

Exit status: 0 success (whatever the policies would decide: use check for that);
2 usage error or input that cannot be read or parsed.`,
		Example: `  # See what the webhook would add
  stateguard mutate --diff statefulset.yaml

  # Write the mutated stream to a new file
  stateguard mutate app/ > app.mutated.yaml`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError("no PATH given: name files, directories or - for standard input\nSee '%s --help'.", c.CommandPath())
			}
			return nil
		},
		RunE: func(c *cobra.Command, paths []string) error {
			docs, outcome, err := in.run(c, paths)
			if err != nil {
				return err
			}
			files, err := renderFiles(docs, outcome)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			if diff {
				return writeDiff(c.OutOrStdout(), files)
			}
			return writeStream(c.OutOrStdout(), files)
		},
	}
	in.register(c)
	c.Flags().BoolVar(&diff, "diff", false, "print a unified diff of the changes instead of the documents")
	return c
}

// renderedFile is one input file's YAML stream before and after mutation.
type renderedFile struct {
	name          string
	before, after []byte
}

// renderFiles renders each input file twice: as read, and with the patches
// applied. Untouched documents come out exactly as they were read.
func renderFiles(docs []*manifest.Document, outcome *check.Outcome) ([]renderedFile, error) {
	var files []renderedFile
	for start := 0; start < len(docs); {
		end := start + 1
		for end < len(docs) && docs[end].File == docs[start].File {
			end++
		}
		group := docs[start:end]
		start = end
		var before, after bytes.Buffer
		if err := manifest.WriteStream(&before, group, nil); err != nil {
			return nil, err
		}
		if err := manifest.WriteStream(&after, group, outcome.Patches); err != nil {
			return nil, err
		}
		files = append(files, renderedFile{name: group[0].File, before: before.Bytes(), after: after.Bytes()})
	}
	return files, nil
}

func writeStream(w io.Writer, files []renderedFile) error {
	for i, f := range files {
		if i > 0 {
			if _, err := io.WriteString(w, "---\n"); err != nil {
				return err
			}
		}
		if _, err := w.Write(f.after); err != nil {
			return err
		}
	}
	return nil
}

func writeDiff(w io.Writer, files []renderedFile) error {
	for _, f := range files {
		before, after := f.before, f.after
		if bytes.Equal(before, after) {
			continue
		}
		text, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
			A: difflib.SplitLines(string(before)), B: difflib.SplitLines(string(after)),
			FromFile: "a/" + strings.TrimPrefix(f.name, "/"), ToFile: "b/" + strings.TrimPrefix(f.name, "/"), Context: 3,
		})
		if err != nil {
			return err
		}
		if _, err := io.WriteString(w, text); err != nil {
			return err
		}
	}
	return nil
}
