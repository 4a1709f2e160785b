package controlplane

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Process is a child process with its output in a log file. It runs in its
// own process group, so a Ctrl-C in the terminal reaches only this program,
// which then stops its children in order; on Linux it is also SIGKILLed if
// this program dies first, so that it never outlives it.
type Process struct {
	// Name is what errors call the process.
	Name string
	// LogPath is the file receiving its stdout and stderr.
	LogPath string

	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	err  error
}

// StartProcess starts path with args, its stdout and stderr going to logPath
// (created or truncated). The caller must Stop or Kill it.
func StartProcess(name, path string, args []string, logPath string) (*Process, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Process{Name: name, LogPath: logPath, cmd: cmd, log: logf, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = logf.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id (and process group id).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited; Err then tells how.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is the result of Wait, once Done is closed.
func (p *Process) Err() error { return p.err }

// WaitHealthy polls url with hc until it answers 200 OK, the process exits,
// ctx ends or timeout passes.
func (p *Process) WaitHealthy(ctx context.Context, hc *http.Client, url string, timeout time.Duration) error {
	err := poll(ctx, timeout, func(ctx context.Context) (bool, error) {
		select {
		case <-p.done:
			return false, fmt.Errorf("%s exited: %v (log: %s)", p.Name, p.err, p.LogPath)
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := hc.Do(req)
		if err != nil {
			return false, nil
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %s at %s: %w (log: %s)", p.Name, url, err, p.LogPath)
	}
	return nil
}

// Stop sends SIGTERM to the process group and waits up to grace for the
// process to exit, then SIGKILLs the group. It returns an error only if the
// process had to be killed. Safe to call more than once.
func (p *Process) Stop(grace time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	signalGroup(p.Pid(), syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
		p.Kill()
		return fmt.Errorf("%s did not exit within %s of SIGTERM; killed", p.Name, grace)
	}
}

// Kill SIGKILLs the process group and waits for the process to be reaped.
func (p *Process) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	killGroup(p.Pid())
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
}
