package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
)

// profile starts CPU profiles of this process (the agent) and of the
// API server (its /debug/pprof) into dir; the returned func stops both.
// No dir: nothing.
func (b *bench) profile(ctx context.Context, dir, name string) (func() error, error) {
	if dir == "" {
		return func() error { return nil }, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.Create(filepath.Join(dir, name+"-agent.pprof"))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return nil, err
	}
	// The API server profiles for a fixed time; ask for more than the
	// section needs and cut it when the section ends.
	apiCtx, stopAPI := context.WithCancel(ctx)
	apiDone := make(chan error, 1)
	go func() {
		data, err := b.client.CoreV1().RESTClient().Get().AbsPath("/debug/pprof/profile").Param("seconds", "60").DoRaw(apiCtx)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, name+"-apiserver.pprof"), data, 0o644)
		}
		apiDone <- err
	}()
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return err
		}
		err := <-apiDone
		stopAPI()
		fmt.Fprintf(os.Stderr, "profiles in %s: go tool pprof -top %s-agent.pprof / %s-apiserver.pprof\n", dir, name, name)
		return err
	}, nil
}
