package main

import (
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
)

func runnerOverhead() (float64, error) {
	out, err := exec.Command("go", "test", "-tags", "urfave_cli_no_docs", "-run", "^$", "-bench", "ExecOverhead", "-benchtime", "300x", "./pkg/runner").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%v: %s", err, out)
	}
	m := regexp.MustCompile(`([\d.]+) added-ms/op`).FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no added-ms/op in: %s", out)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}
