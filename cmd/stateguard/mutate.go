package main

import (
	"bytes"
	"fmt"
	"io"

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

// renderedFile is one input file's documents before and after mutation.
type renderedFile struct {
	name          string
	before, after [][]byte
}

func renderFiles(docs []*manifest.Document, outcome *check.Outcome) ([]renderedFile, error) {
	var files []renderedFile
	for _, doc := range docs {
		if len(files) == 0 || files[len(files)-1].name != doc.File {
			files = append(files, renderedFile{name: doc.File})
		}
		f := &files[len(files)-1]
		before := doc.Source()
		after := before
		if patches := outcome.Patches[doc]; len(patches) > 0 {
			var err error
			if after, err = doc.Apply(patches); err != nil {
				return nil, fmt.Errorf("%s:%d: applying changes: %w", doc.File, doc.Line, err)
			}
		}
		f.before = append(f.before, before)
		f.after = append(f.after, after)
	}
	return files, nil
}

func joinDocs(docs [][]byte) []byte {
	var b bytes.Buffer
	for i, d := range docs {
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(d)
		if len(d) > 0 && d[len(d)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

func writeStream(w io.Writer, files []renderedFile) error {
	var all [][]byte
	for _, f := range files {
		all = append(all, f.after...)
	}
	_, err := w.Write(joinDocs(all))
	return err
}

func writeDiff(w io.Writer, files []renderedFile) error {
	for _, f := range files {
		before, after := joinDocs(f.before), joinDocs(f.after)
		if bytes.Equal(before, after) {
			continue
		}
		text, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
			A: difflib.SplitLines(string(before)), B: difflib.SplitLines(string(after)),
			FromFile: "a/" + f.name, ToFile: "b/" + f.name, Context: 3,
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
