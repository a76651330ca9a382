package framework

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sync"
)

var binaries struct {
	mu    sync.Mutex
	dir   string
	built map[string]string
}

// Binary builds the command pkg (github.com/magekube/magekube/cmd/agent)
// once per process and returns the binary's path. RemoveBinaries removes
// them all.
func Binary(pkg string) (string, error) {
	binaries.mu.Lock()
	defer binaries.mu.Unlock()
	if p, ok := binaries.built[pkg]; ok {
		return p, nil
	}
	if binaries.dir == "" {
		dir, err := os.MkdirTemp("", "magekube-test-bin")
		if err != nil {
			return "", err
		}
		binaries.dir, binaries.built = dir, map[string]string{}
	}
	bin := filepath.Join(binaries.dir, path.Base(pkg))
	out, err := exec.Command("go", "build", "-tags", "urfave_cli_no_docs", "-o", bin, pkg).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
	}
	binaries.built[pkg] = bin
	return bin, nil
}

// RemoveBinaries removes what Binary built.
func RemoveBinaries() {
	binaries.mu.Lock()
	defer binaries.mu.Unlock()
	if binaries.dir != "" {
		os.RemoveAll(binaries.dir)
		binaries.dir, binaries.built = "", nil
	}
}
