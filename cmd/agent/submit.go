package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/urfave/cli/v2"

	"github.com/magekube/magekube/pkg/protocol"
)

func submitCommand(g *globalOptions, stdout io.Writer) *cli.Command {
	var wait bool
	return &cli.Command{
		Name:      "submit",
		Usage:     "write a run request (FILE, or - for stdin) into <dir>/requests/",
		ArgsUsage: "FILE|-",
		Description: `Validates the request and writes it atomically (temp name, then rename).
With --wait it follows the run's status and log until it ends, and exits
with the block's exit code (1 when the run failed without one).`,
		Flags: append([]cli.Flag{&cli.BoolFlag{Name: "wait", EnvVars: env("MAGEKUBE_WAIT"), Destination: &wait, Usage: "follow the run to its end"}},
			commandFlags(g, "dir")...),
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
			req, err := protocol.Submit(l, data)
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, "submitted", req.ID)
			if !wait {
				return nil
			}
			return follow(c, l, req.ID, stdout)
		},
	}
}

// follow prints the run's transitions and log until it ends.
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
				if s.Phase == protocol.PhaseSucceeded {
					return nil
				}
				if s.ExitCode != nil && *s.ExitCode != 0 {
					return exitCode(*s.ExitCode)
				}
				return exitCode(1)
			}
		}
		select {
		case <-c.Context.Done():
			return c.Context.Err()
		case <-w.Events:
		case <-tick.C:
		}
	}
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
			if err := protocol.RequestCancel(protocol.Layout{Root: g.dir}, c.Args().First()); err != nil {
				return err
			}
			fmt.Fprintln(stdout, "cancel requested for", c.Args().First())
			return nil
		},
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// exitCode carries a block's exit code up to main.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("the run ended with exit code %d", int(e)) }
