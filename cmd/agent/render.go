package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/magekube/magekube/pkg/dryrun"
)

func renderCommand(g *globalOptions, stdout io.Writer) *cli.Command {
	o := dryrun.Options{}
	return &cli.Command{
		Name:      "render",
		Usage:     "print the Job the agent would create for a request, as YAML",
		ArgsUsage: "REQUEST.json",
		Description: `Reads the request, the project's metadata.yaml files (project_dir in the
request) and the Mage server pod, and prints the Job. Nothing is created.
The Job is checked against the same privilege policy as the agent's (the
same --allow-… flags), and a refused Job is an error.
Without --pod-file the pod is read from the API server, like the agent
does (--pod-name/--pod-namespace or KUBE_POD_NAME/KUBE_NAMESPACE).
Every problem is printed on stderr and the exit status is 1.`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "pod-file", EnvVars: env("MAGEKUBE_POD_FILE"), Destination: &o.PodFile,
				Usage: "read the server pod from this YAML or JSON file instead of the API"},
		}, append(policyFlags(&o.Policy), commandFlags(g)...)...),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("render: want exactly one REQUEST.json, got %d arguments", c.NArg())
			}
			o.RequestFile = c.Args().First()
			o.Kube = g.kube
			o.PodName, o.PodNamespace = g.podName, g.podNamespace
			o.Settings = g.jobSettings()
			return dryrun.Run(c.Context, o, stdout)
		},
	}
}
