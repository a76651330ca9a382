// Command runner is the entrypoint of every magekube Job container: it
// runs the block command and records its outcome on the shared volume.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/magekube/magekube/pkg/buildinfo"
	"github.com/magekube/magekube/pkg/runner"
)

func main() {
	err := newApp(os.Stdout, os.Stderr).RunContext(context.Background(), os.Args)
	var exit exitCode
	switch {
	case errors.As(err, &exit):
		os.Exit(int(exit))
	case err != nil:
		fmt.Fprintln(os.Stderr, "runner:", err)
		os.Exit(runner.ExitRunnerError)
	}
}

// exitCode carries the command's exit code up to main.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit code %d", int(e)) }

type execOptions struct {
	runDir   string
	timeout  time.Duration
	grace    time.Duration
	pod      string
	logLimit int64
}

// DefaultLogLimit caps a run's log on the shared volume at 1 GiB: more
// than any block's useful output, less than a runaway loop fills.
const DefaultLogLimit = 1 << 30

const exitCodes = `EXIT CODES:
   n        the command exited with code n
   128+s    the command was killed by signal s (143 for SIGTERM, 137 for SIGKILL)
   124      --timeout expired; the command got SIGTERM, then SIGKILL after --grace
   125      the runner itself failed (bad flags, no command)
   126      the command exists but cannot be executed
   127      the command was not found`

func newApp(stdout, stderr io.Writer) *cli.App {
	o := &execOptions{}
	return &cli.App{
		Name:           "runner",
		Usage:          "run a Mage block command inside a magekube Job and record its outcome",
		Version:        buildinfo.String(),
		Writer:         stdout,
		ErrWriter:      stderr,
		ExitErrHandler: func(*cli.Context, error) {}, // main decides exit codes
		Commands: []*cli.Command{
			{
				Name:      "exec",
				Usage:     "run CMD as the container's main process",
				ArgsUsage: "-- CMD [ARGS...]",
				Description: `Starts CMD in its own process group and forwards SIGTERM, SIGINT, SIGHUP,
SIGQUIT, SIGUSR1 and SIGUSR2 to it; after a SIGTERM the group has --grace
to exit before it is killed. Orphaned grandchildren are reaped. Output goes
to the container's stdout/stderr and to RUN_DIR/log; when CMD ends,
RUN_DIR/result.json (exit_code, signal, reason, timings, pod, attempt) and
an OTLP JSON span in RUN_DIR/spans/ are written atomically. TRACEPARENT in
the environment makes the span its child; CMD sees its own TRACEPARENT.
If RUN_DIR is not writable the command still runs (one warning on stderr).

` + exitCodes,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "run-dir", EnvVars: []string{"MAGEKUBE_RUN_DIR"}, Destination: &o.runDir,
						Usage: "the run's directory on the shared volume (empty: record nothing)"},
					&cli.DurationFlag{Name: "timeout", EnvVars: []string{"MAGEKUBE_TIMEOUT"}, Destination: &o.timeout,
						Usage: "stop the command after this long and exit 124 (0: no timeout)"},
					&cli.DurationFlag{Name: "grace", Value: 10 * time.Second, EnvVars: []string{"MAGEKUBE_GRACE"}, Destination: &o.grace,
						Usage: "time between SIGTERM and SIGKILL for the command's process group"},
					&cli.StringFlag{Name: "pod", EnvVars: []string{"MAGEKUBE_POD_NAME", "HOSTNAME"}, Destination: &o.pod,
						Usage: "pod name recorded in result.json"},
					&cli.Int64Flag{Name: "log-limit", Value: DefaultLogLimit, EnvVars: []string{"MAGEKUBE_LOG_LIMIT"}, Destination: &o.logLimit,
						Usage: "bytes RUN_DIR/log may take (0: no limit); past it the output still goes to the container log"},
				},
				Action: func(c *cli.Context) error { return runExec(c.Context, o, c.Args().Slice(), stdout, stderr) },
			},
			{
				Name:      "install",
				Usage:     "copy this binary to DEST (mode 0755, atomically), for the Job's init container",
				ArgsUsage: "DEST",
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return fmt.Errorf("install: want exactly one DEST, got %d arguments", c.NArg())
					}
					return runner.Install(c.Args().First())
				},
			},
			{
				Name:  "version",
				Usage: "print the runner's version",
				Action: func(*cli.Context) error {
					_, err := fmt.Fprintln(stdout, "runner", buildinfo.String())
					return err
				},
			},
		},
	}
}

func runExec(ctx context.Context, o *execOptions, command []string, stdout, stderr io.Writer) error {
	if len(command) == 0 {
		return errors.New("exec: no command given (runner exec [flags] -- CMD [ARGS...])")
	}
	if o.timeout < 0 || o.grace < 0 {
		return errors.New("exec: --timeout and --grace must not be negative")
	}
	code := runner.Exec(ctx, runner.Options{
		RunDir: o.runDir, Timeout: o.timeout, Grace: o.grace, Command: command,
		Env: os.Environ(), Pod: o.pod, Stdout: stdout, Stderr: stderr, LogLimit: o.logLimit,
	})
	if code != 0 {
		return exitCode(code)
	}
	return nil
}
