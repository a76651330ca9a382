package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// runnerOverhead runs the runner's benchmark: the wall time `runner exec`
// adds over an empty static Go program (its run directory on the disk,
// and on tmpfs), and over `true`.
func runnerOverhead() (overEmptyGo, overEmptyGoTmpfs, overTrue float64, err error) {
	out, err := exec.Command("go", "test", "-tags", "urfave_cli_no_docs", "-run", "^$", "-bench", "ExecOverhead", "-benchtime", "300x", "./pkg/runner").CombinedOutput()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("%v: %s", err, out)
	}
	figure := func(unit string) (float64, error) {
		m := regexp.MustCompile(`(-?[\d.]+) ` + unit).FindSubmatch(out)
		if m == nil {
			return 0, fmt.Errorf("no %s in: %s", unit, out)
		}
		return strconv.ParseFloat(string(m[1]), 64)
	}
	if overEmptyGo, err = figure("over-empty-go-ms/op"); err != nil {
		return 0, 0, 0, err
	}
	if overEmptyGoTmpfs, err = figure("over-empty-go-tmpfs-ms/op"); err != nil {
		return 0, 0, 0, err
	}
	overTrue, err = figure("added-ms/op")
	return overEmptyGo, overEmptyGoTmpfs, overTrue, err
}

// triggerSection runs integrations/mage/bench_trigger.py (how soon the
// Mage side learns that a run ended: inotify, and the polling fallback)
// and takes its figures.
func triggerSection(repo string, rep *report) error {
	out, err := exec.Command("python3", filepath.Join(repo, "integrations", "mage", "bench_trigger.py"), "1000").Output()
	if err != nil {
		return fmt.Errorf("bench_trigger.py: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var figures map[string]float64
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &figures); err != nil {
		return fmt.Errorf("bench_trigger.py: %w: %s", err, out)
	}
	rep.add("trigger_notice_p50_ms", figures["trigger_notice_p50_ms"], "trigger notice (terminal status.json written → Mage's executor returns), inotify, p50 (ms)")
	rep.add("trigger_notice_p99_ms", figures["trigger_notice_p99_ms"], "trigger notice, inotify, p99 (ms; target ≤ 20)")
	rep.add("trigger_poll_notice_p99_ms", figures["trigger_poll_notice_p99_ms"], "trigger notice, polling fallback (200 ms), p99 (ms)")
	return nil
}
