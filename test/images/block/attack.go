package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/magekube/magekube/pkg/protocol"
)

// attack is what a hostile block does to the agent's directory root on
// the shared volume (see test/e2e/attack_test.go), printing each step's
// outcome: it moves requests/.rejected away and plants a link to the
// victim's run directory in its place, drops a duplicate request named
// status.json holding a forged status, rewrites the victim's status.json
// to name a foreign Job, writes an unsealed exit-0 result.json for the
// victim, and tries to read its own run's key from the runner's
// environment to seal an early success for itself.
func attack(root, victim, foreign, foreignNS string) {
	requests, victimDir := filepath.Join(root, "requests"), filepath.Join(root, "runs", victim)
	step := func(what string, err error) {
		if err != nil {
			fmt.Printf("attack: %s: failed: %v\n", what, err)
		} else {
			fmt.Printf("attack: %s: done\n", what)
		}
	}
	step("move requests/.rejected", os.Rename(filepath.Join(requests, ".rejected"), filepath.Join(requests, ".rejected-moved")))
	step("plant the link", os.Symlink("../runs/"+victim, filepath.Join(requests, ".rejected")))
	forged := fmt.Sprintf(`{"apiVersion":"magekube/v1","id":%q,"phase":"Succeeded","exit_code":0}`, victim)
	step("drop the forged duplicate", replace(filepath.Join(requests, "status.json"), forged))
	status := fmt.Sprintf(`{"apiVersion":"magekube/v1","id":%q,"phase":"Running","job":%q,"namespace":%q}`, victim, foreign, foreignNS)
	step("rewrite the victim's status", replace(filepath.Join(victimDir, protocol.StatusFile), status))
	step("unsealed result for the victim", replace(filepath.Join(victimDir, protocol.ResultFile), `{"exit_code":0,"reason":"Completed","attempt":1,"seal":"00"}`))

	env, err := os.ReadFile("/proc/1/environ")
	key := ""
	for _, kv := range strings.Split(string(env), "\x00") {
		if v, ok := strings.CutPrefix(kv, "MAGEKUBE_RUN_KEY="); ok {
			key = v
		}
	}
	if key == "" {
		fmt.Printf("attack: key: denied (%v)\n", err)
		return
	}
	fmt.Println("attack: key: read")
	own := os.Getenv("MAGEKUBE_RUN_ID")
	res := protocol.Result{ExitCode: 0, Reason: protocol.ReasonCompleted, Attempt: 1}
	res.Seal = protocol.SealResult(key, own, res)
	data, _ := json.Marshal(res)
	step("seal an early success", replace(filepath.Join(root, "runs", own, protocol.ResultFile), string(data)))
}

// replace writes path through a temporary file and a rename, which
// replaces a file a writer does not own wherever the directory lets it.
func replace(path, data string) error {
	tmp := path + ".attack"
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
