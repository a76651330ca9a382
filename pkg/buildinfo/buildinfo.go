// Package buildinfo holds the version stamped into the binaries at build
// time with -ldflags "-X github.com/magekube/magekube/pkg/buildinfo.Version=…".
package buildinfo

import "runtime"

// Version and Commit are set by the linker; "dev" in a plain go build.
var (
	Version = "dev"
	Commit  = "unknown"
)

// String is the one-line version the CLIs print.
func String() string {
	return Version + " (commit " + Commit + ", " + runtime.Version() + ")"
}
