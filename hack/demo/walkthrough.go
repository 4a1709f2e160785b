package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The walkthrough knows the examples by name: see examples/README.md.
var exampleFiles = []string{"00-storageclasses.yaml", "01-good.yaml", "02-denied.yaml", "03-warn-namespace.yaml"}

const (
	goodStatefulSet = "db" // in 01-good.yaml, namespace default
	scheduleLabel   = "stateguard.dev/snapshot-schedule"
	claimTemplates  = `{range .spec.volumeClaimTemplates[*]}{.metadata.name}: storageClassName={.spec.storageClassName} labels={.metadata.labels}{"\n"}{end}`
)

func (d *demo) walkthrough(ctx context.Context) error {
	example := func(name string) string { return filepath.Join(d.o.examples, name) }
	fmt.Fprintf(d.out, "kubectl runs below as a cluster admin: KUBECONFIG=%s\n\n", d.kubeconfig)

	d.heading("1/5", "StorageClasses")
	d.comment("An AKS cluster comes with these classes; this bare control plane has none, so create them.")
	if _, err := d.kubectl(ctx, 0, "apply", "-f", example("00-storageclasses.yaml")); err != nil {
		return err
	}

	d.heading("2/5", "A mutation: admitted, and completed by the mutating webhook")
	d.comment("A headless Service and a StatefulSet labelled " + scheduleLabel + "=daily whose claim template")
	d.comment("names no storageClassName. (The warning is real: AKS's managed-csi deletes a volume with its claim.)")
	if _, err := d.kubectl(ctx, 0, "apply", "-f", example("01-good.yaml")); err != nil {
		return err
	}
	d.comment("The stored claim template got the class for ReadWriteOnce, and the schedule label:")
	out, err := d.kubectl(ctx, 0, "get", "statefulset", goodStatefulSet, "-o", "jsonpath="+claimTemplates)
	if err != nil {
		return err
	}
	if !strings.Contains(out, "storageClassName=managed-csi") || !strings.Contains(out, scheduleLabel) {
		return fmt.Errorf("the claim template was not mutated: %q", out)
	}
	d.comment("So the claim the StatefulSet controller creates carries both (Pending: no nodes here, and the")
	d.comment("class binds when a pod is scheduled):")
	if err := d.waitForClaims(ctx, "default", 60*time.Second); err != nil {
		return err
	}
	if _, err := d.kubectl(ctx, 0, "get", "pvc", "-L", scheduleLabel); err != nil {
		return err
	}

	d.heading("3/5", "A denial")
	d.comment("A StatefulSet asking for ReadWriteMany on managed-csi, an Azure disk class: no disk serves RWX,")
	d.comment("so without stateguard its claims would sit Pending with the reason buried in events.")
	if _, err := d.kubectl(ctx, 1, "apply", "-f", example("02-denied.yaml")); err != nil {
		return err
	}
	d.comment("The Service went in; the StatefulSet was refused, with the policy, the field and the fix in one line.")
	fmt.Fprintln(d.out)

	d.heading("4/5", "Warnings: a namespace in warn mode")
	d.comment("The namespace is labelled stateguard.dev/mode=warn, so a StatefulSet that breaks every policy")
	d.comment("(no headless Service, no snapshot schedule) is admitted, and kubectl prints the warnings.")
	out, err = d.kubectl(ctx, 0, "apply", "-f", example("03-warn-namespace.yaml"))
	if err != nil {
		return err
	}
	if !strings.Contains(out, "Warning: ") {
		return fmt.Errorf("kubectl printed no warning")
	}

	d.heading("5/5", "The same verdicts offline, without a cluster")
	if _, err := d.run1(ctx, 1, d.o.stateguard, d.o.stateguard, "check", dirArg(d.o.examples)); err != nil {
		return err
	}
	return nil
}

func (d *demo) heading(step, title string) {
	fmt.Fprintf(d.out, "--- %s %s\n", step, title)
}

func (d *demo) comment(text string) {
	fmt.Fprintf(d.out, "# %s\n", text)
}

// kubectl runs kubectl as the cluster admin, echoing the command and
// streaming its output (stdout and stderr interleaved, as in a terminal), and
// returns an error unless it exits with wantExit.
func (d *demo) kubectl(ctx context.Context, wantExit int, args ...string) (string, error) {
	return d.run1(ctx, wantExit, "kubectl", d.o.kubectl, args...)
}

func (d *demo) run1(ctx context.Context, wantExit int, display, bin string, args ...string) (string, error) {
	fmt.Fprintf(d.out, "$ %s %s\n", display, shellJoin(args))
	var buf bytes.Buffer
	w := io.MultiWriter(d.out, &buf)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+d.kubeconfig, "KUBECACHEDIR="+filepath.Join(d.dir, "kubectl-cache"))
	cmd.Stdout, cmd.Stderr = w, w
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		return buf.String(), fmt.Errorf("%s %s: %w", display, shellJoin(args), err)
	}
	if code != 0 {
		fmt.Fprintf(d.out, "(exit status %d)\n", code)
	}
	fmt.Fprintln(d.out)
	if ctx.Err() != nil {
		return buf.String(), ctx.Err()
	}
	if code != wantExit {
		return buf.String(), fmt.Errorf("%s %s: exit status %d, expected %d", display, shellJoin(args), code, wantExit)
	}
	return buf.String(), nil
}

// waitForClaims waits until the namespace holds a PersistentVolumeClaim.
func (d *demo) waitForClaims(ctx context.Context, namespace string, timeout time.Duration) error {
	c, err := client.New(d.cp.Config, client.Options{})
	if err != nil {
		return err
	}
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		var claims corev1.PersistentVolumeClaimList
		if err := c.List(ctx, &claims, client.InNamespace(namespace)); err != nil {
			return false, nil
		}
		return len(claims.Items) > 0, nil
	})
	if err != nil {
		return fmt.Errorf("the StatefulSet controller created no PersistentVolumeClaim in %s within %s: %w", namespace, timeout, err)
	}
	return nil
}

// dirArg spells a directory argument with a trailing slash, as the README does.
func dirArg(dir string) string {
	if strings.HasSuffix(dir, "/") {
		return dir
	}
	return dir + "/"
}

// shellJoin quotes args for display, so that the printed command can be
// pasted into a shell.
func shellJoin(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = shellQuote(a)
	}
	return strings.Join(quoted, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,@%+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
