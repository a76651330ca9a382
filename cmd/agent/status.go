package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/yaml"

	"github.com/magekube/magekube/pkg/protocol"
)

func statusCommand(g *globalOptions, stdout io.Writer) *cli.Command {
	var output string
	var watch, noHeaders bool
	return &cli.Command{
		Name:      "status",
		Usage:     "show runs: a table of all, or one run's status",
		ArgsUsage: "[ID]",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", EnvVars: env("MAGEKUBE_OUTPUT"), Destination: &output,
				Usage: "table, wide (namespace, pod, node, attempts, message), name, json or yaml"},
			&cli.BoolFlag{Name: "no-headers", EnvVars: env("MAGEKUBE_NO_HEADERS"), Destination: &noHeaders,
				Usage: "print tables without their header line"},
			&cli.BoolFlag{Name: "watch", Aliases: []string{"w"}, EnvVars: env("MAGEKUBE_WATCH"), Destination: &watch,
				Usage: "print again whenever a status changes, until interrupted"},
		}, commandFlags(g, "dir")...),
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return fmt.Errorf("status: want at most one run ID, got %d", c.NArg())
			}
			l, id := protocol.Layout{Root: g.dir}, c.Args().First()
			if err := checkRoot(l); err != nil {
				return err
			}
			var last []byte
			for {
				runs, err := loadStatuses(l, id)
				if err != nil {
					return err
				}
				// Print when a status changed (not when only the ages did).
				if seen, _ := json.Marshal(runs); !bytes.Equal(seen, last) {
					if last != nil {
						fmt.Fprintln(stdout)
					}
					if err := printStatus(stdout, runs, id != "", output, noHeaders); err != nil {
						return err
					}
					last = seen
				}
				if !watch {
					return nil
				}
				select {
				case <-c.Context.Done():
					return nil
				case <-time.After(time.Second):
				}
			}
		},
	}
}

// loadStatuses is one run's status, or every run's (requests no agent
// claimed yet included, as Queued).
func loadStatuses(l protocol.Layout, id string) ([]protocol.Status, error) {
	if id == "" {
		return allStatuses(l)
	}
	s, err := runStatus(l, id)
	if err != nil {
		return nil, err
	}
	return []protocol.Status{s}, nil
}

// printStatus writes the statuses in the format; one alone as an object.
func printStatus(w io.Writer, runs []protocol.Status, one bool, format string, noHeaders bool) error {
	switch format {
	case "json":
		var v any = runs
		if one {
			v = runs[0]
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "yaml":
		var v any = runs
		if one {
			v = runs[0]
		}
		data, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	case "table", "wide":
		return statusTable(w, runs, format == "wide", noHeaders)
	case "name":
		for _, s := range runs {
			if _, err := fmt.Fprintln(w, "run/"+s.ID); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("status: --output %q is not one of table, wide, name, json, yaml", format)
}

// statusTable prints runs as kubectl prints resources: ages like "5m",
// every cell on one line and free of control characters, whatever a
// status file (which any pod can write) holds.
func statusTable(w io.Writer, runs []protocol.Status, wide, noHeaders bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := "ID\tPHASE\tREASON\tJOB\tAGE\tDURATION"
	if wide {
		header += "\tNAMESPACE\tPOD\tNODE\tATTEMPTS\tMESSAGE"
	}
	if !noHeaders {
		fmt.Fprintln(tw, header)
	}
	for _, s := range runs {
		dur := "-"
		if s.StartedAt != nil {
			end := time.Now()
			if s.FinishedAt != nil {
				end = *s.FinishedAt
			}
			dur = duration.HumanDuration(end.Sub(*s.StartedAt))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s", cell(s.ID), cell(string(s.Phase)), cell(s.Reason), cell(s.Job), duration.HumanDuration(time.Since(s.CreatedAt)), dur)
		if wide {
			fmt.Fprintf(tw, "\t%s\t%s\t%s\t%d\t%s", cell(s.Namespace), cell(s.Pod), cell(s.Node), s.Attempts, cell(s.Message))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}
