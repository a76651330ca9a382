// Command block stands in for Mage in the test server image. As "serve"
// it idles like the Mage server; as anything else it is a block command
// whose behaviour the flags choose:
//
//	block [--print TEXT] [--sleep DUR] [--alloc-mib N] [--write FILE]
//	      [--fail-first-attempt DIR] [--attack ROOT --victim ID --foreign JOB --foreign-namespace NS]
//	      [--exit CODE]
//
// Installed as /app/run_app.sh it accepts Mage's own `mage run …` command
// and behaves as BLOCK_BEHAVIOUR (the same flags, space-separated) says.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	args := os.Args[1:]
	if filepath.Base(os.Args[0]) == "run_app.sh" {
		fmt.Println("mage stand-in:", strings.Join(args, " "))
		args = strings.Fields(os.Getenv("BLOCK_BEHAVIOUR"))
	}
	if len(args) > 0 && args[0] == "serve" {
		serve()
		return
	}
	os.Exit(block(args))
}

func serve() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	fmt.Println("mage stand-in server: ready")
	<-sigs
}

func block(args []string) int {
	fs := flag.NewFlagSet("block", flag.ContinueOnError)
	text := fs.String("print", "", "print this line")
	sleep := fs.Duration("sleep", 0, "sleep this long")
	alloc := fs.Int("alloc-mib", 0, "allocate and touch this many MiB")
	write := fs.String("write", "", "create this file")
	failFirst := fs.String("fail-first-attempt", "", "exit 1 unless DIR/attempted exists (and create it)")
	code := fs.Int("exit", 0, "exit with this code")
	attackRoot := fs.String("attack", "", "attack the agent's directory ROOT on the shared volume (attack.go)")
	victim := fs.String("victim", "", "with --attack: the run attacked")
	foreign := fs.String("foreign", "", "with --attack: a Job magekube never made")
	foreignNS := fs.String("foreign-namespace", "", "with --attack: its namespace")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *attackRoot != "" {
		attack(*attackRoot, *victim, *foreign, *foreignNS)
	}
	if *text != "" {
		fmt.Println(*text)
	}
	if *write != "" {
		if err := os.WriteFile(*write, []byte("written by block\n"), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 3
		}
	}
	if *failFirst != "" {
		marker := filepath.Join(*failFirst, "attempted")
		if _, err := os.Stat(marker); err != nil {
			_ = os.WriteFile(marker, nil, 0o644)
			fmt.Fprintln(os.Stderr, "first attempt fails on purpose")
			return 1
		}
	}
	var hold [][]byte
	for range *alloc {
		b := make([]byte, 1<<20)
		for i := range b {
			b[i] = 1
		}
		hold = append(hold, b)
	}
	time.Sleep(*sleep)
	_ = hold
	return *code
}
