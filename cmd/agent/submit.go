package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/urfave/cli/v2"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/magekube/magekube/pkg/protocol"
)

func submitCommand(g *globalOptions, stdout io.Writer) *cli.Command {
	var wait bool
	var claimTimeout time.Duration
	return &cli.Command{
		Name:      "submit",
		Usage:     "write a run request (FILE, or - for stdin) into <dir>/requests/",
		ArgsUsage: "FILE|-",
		Description: `Validates the request and writes it atomically (temp name, then rename).
With --wait it follows the run's status and log until it ends, and exits
with the block's exit code (1 when the run failed without one). A request
no agent claims within --claim-timeout is withdrawn and the command fails,
as Mage's trigger does; so is one still unclaimed when interrupted.`,
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "wait", EnvVars: env("MAGEKUBE_WAIT"), Destination: &wait, Usage: "follow the run to its end"},
			&cli.DurationFlag{Name: "claim-timeout", Value: 60 * time.Second, EnvVars: env("MAGEKUBE_CLAIM_TIMEOUT"), Destination: &claimTimeout,
				Usage: "with --wait: how long an agent may take to claim the request"},
		}, commandFlags(g, "dir")...),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return errors.New("submit: want one FILE or -")
			}
			var data []byte
			var err error
			if c.Args().First() == "-" {
				data, err = io.ReadAll(io.LimitReader(os.Stdin, protocol.MaxRequestBytes+1))
			} else {
				data, err = os.ReadFile(c.Args().First())
			}
			if err != nil {
				return err
			}
			l := protocol.Layout{Root: g.dir}
			if err := checkRoot(l); err != nil {
				return err
			}
			req, err := protocol.Submit(l, data)
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, "submitted", req.ID)
			if !wait {
				return nil
			}
			if err := awaitClaim(c, l, req.ID, claimTimeout, stdout); err != nil {
				return err
			}
			return follow(c, l, req.ID, stdout)
		},
	}
}

// awaitClaim waits until an agent claims the request; on the timeout or
// an interrupt it withdraws the request (if still unclaimed) and says so.
func awaitClaim(c *cli.Context, l protocol.Layout, id string, timeout time.Duration, stdout io.Writer) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(l.RunDir(id)); err == nil {
			return nil
		}
		var why error
		select {
		case <-c.Context.Done():
			why = errors.New("interrupted")
		case <-time.After(100 * time.Millisecond):
			if time.Now().After(deadline) {
				why = fmt.Errorf("no agent claimed it within %s; is the agent running? (%s)", timeout, heartbeatAge(l))
			}
		}
		if why == nil {
			continue
		}
		if withdraw(l, id) {
			fmt.Fprintln(stdout, "withdrew", id)
			return fmt.Errorf("run %s: %w; the request was withdrawn", id, why)
		}
		return nil // claimed meanwhile: follow it
	}
}

// heartbeatAge says how long ago an agent last beat in this directory.
func heartbeatAge(l protocol.Layout) string {
	fi, err := os.Stat(l.Heartbeat())
	if err != nil {
		return "no agent has ever written " + l.Heartbeat()
	}
	return fmt.Sprintf("its heartbeat %s is %s old", l.Heartbeat(), duration.HumanDuration(time.Since(fi.ModTime())))
}

// follow prints the run's transitions and log until it ends, and
// returns the run's outcome as logs -f does.
func follow(c *cli.Context, l protocol.Layout, id string, stdout io.Writer) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	_ = w.Add(l.Runs())
	tick := time.NewTicker(time.Second) // the run dir may be on another node's write path
	defer tick.Stop()
	var last protocol.Phase
	var logOffset int64
	for {
		_ = w.Add(l.RunDir(id)) // exists once the agent claimed the request
		logOffset = copyFrom(l.RunFile(id, protocol.LogFile), logOffset, stdout)
		if s, err := protocol.ReadStatus(l, id); err == nil {
			if s.Phase != last {
				fmt.Fprintf(stdout, "[%s] %s %s %s\n", id, s.Phase, s.Reason, s.Message)
				last = s.Phase
			}
			if s.Phase.Terminal() {
				copyFrom(l.RunFile(id, protocol.LogFile), logOffset, stdout)
				return outcome(s)
			}
		}
		select {
		case <-c.Context.Done():
			return fmt.Errorf("stopped following run %s; it goes on (agent cancel %s stops it)", id, id)
		case <-w.Events:
		case <-tick.C:
		}
	}
}

// outcome is a finished run as the command's result: nil for success,
// else the block's exit code (1 when it has none).
func outcome(s protocol.Status) error {
	if s.Phase == protocol.PhaseSucceeded {
		return nil
	}
	if s.ExitCode != nil && *s.ExitCode != 0 {
		return exitCode(*s.ExitCode)
	}
	return exitCode(1)
}

// copyFrom copies path from off to w and returns the new offset. The log
// is on the shared volume: it is opened without following a link or
// blocking on a FIFO.
func copyFrom(path string, off int64, w io.Writer) int64 {
	f, _, err := protocol.OpenRegular(path, os.O_RDONLY, 0)
	if err != nil {
		return off
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return off
	}
	n, _ := io.Copy(w, f)
	return off + n
}

func cancelCommand(g *globalOptions, stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:      "cancel",
		Usage:     "cancel a run: its Job and pods are deleted and it ends as Cancelled",
		ArgsUsage: "ID",
		Flags:     commandFlags(g, "dir"),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return errors.New("cancel: want one run ID")
			}
			l, id := protocol.Layout{Root: g.dir}, c.Args().First()
			if err := checkRoot(l); err != nil {
				return err
			}
			if _, err := os.Stat(l.RunDir(id)); err != nil && protocol.ValidateID(id) == nil && withdraw(l, id) {
				fmt.Fprintln(stdout, "withdrew", id, "(no agent had claimed it)")
				return nil
			}
			if err := protocol.RequestCancel(l, id); err != nil {
				return err
			}
			fmt.Fprintln(stdout, "cancel requested for", id)
			return nil
		},
	}
}

// exitCode carries a block's exit code up to main.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("the run ended with exit code %d", int(e)) }
