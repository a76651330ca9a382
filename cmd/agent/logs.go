package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/magekube/magekube/pkg/protocol"
)

func logsCommand(g *globalOptions, stdout io.Writer) *cli.Command {
	var follow bool
	return &cli.Command{
		Name:      "logs",
		Usage:     "print a run's log (<dir>/runs/<id>/log); -f follows it until the run ends and exits with its outcome",
		ArgsUsage: "ID",
		Description: `The log is the block's stdout and stderr as the runner wrote them on the
shared volume, so it needs no access to the Kubernetes API (kubectl logs
shows the same from the Job's pod while the pod exists).`,
		Flags: append([]cli.Flag{&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, EnvVars: env("MAGEKUBE_FOLLOW"), Destination: &follow,
			Usage: "keep printing what the run writes until its status is final"}}, commandFlags(g, "dir")...),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return errors.New("logs: want one run ID")
			}
			id := c.Args().First()
			if err := protocol.ValidateID(id); err != nil {
				return err
			}
			l := protocol.Layout{Root: g.dir}
			if err := checkRoot(l); err != nil {
				return err
			}
			if _, err := os.Stat(l.RunDir(id)); err != nil {
				if _, queued := queuedStatus(l, id); queued {
					return fmt.Errorf("run %s is not claimed by an agent yet: no log", id)
				}
				return fmt.Errorf("no run %s under %s: %w", id, l.Runs(), err)
			}
			out := terminalSafe(stdout)
			off := copyFrom(l.RunFile(id, protocol.LogFile), 0, out)
			for follow {
				s, err := protocol.ReadStatus(l, id)
				done := err == nil && s.Phase.Terminal()
				select {
				case <-c.Context.Done():
					return nil
				case <-time.After(200 * time.Millisecond):
				}
				off = copyFrom(l.RunFile(id, protocol.LogFile), off, out)
				if done {
					return outcome(s)
				}
			}
			return nil
		},
	}
}
