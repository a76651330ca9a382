//go:build !linux

package share

import (
	"errors"
	"io/fs"
	"os"
)

// The agent runs in a Linux container; elsewhere (`agent render` on a
// laptop) the package builds, and opening a directory says why it cannot.

var errPlatform = errors.New("the agent's access to the shared volume needs Linux")

// Dir is an open directory on the shared volume (Linux only).
type Dir struct{}

func OpenDir(string) (*Dir, error)                       { return nil, errPlatform }
func (d *Dir) Path() string                              { return "" }
func (d *Dir) Close() error                              { return nil }
func (d *Dir) Dir(string) (*Dir, error)                  { return nil, errPlatform }
func (d *Dir) MakeDir(string, fs.FileMode) (*Dir, error) { return nil, errPlatform }
func (d *Dir) Mkdir(string, fs.FileMode) error           { return errPlatform }
func (d *Dir) Open(string, int, fs.FileMode) (*os.File, fs.FileInfo, error) {
	return nil, nil, errPlatform
}
func (d *Dir) ReadFile(string, int64) ([]byte, fs.FileInfo, error) { return nil, nil, errPlatform }
func (d *Dir) WriteFile(string, []byte, fs.FileMode, bool) error   { return errPlatform }
func (d *Dir) Create(string, fs.FileMode) error                    { return errPlatform }
func (d *Dir) Rename(string, *Dir, string) error                   { return errPlatform }
func (d *Dir) Remove(string) error                                 { return errPlatform }
func (d *Dir) RemoveAll(string) error                              { return errPlatform }
func (d *Dir) Entries() ([]string, error)                          { return nil, errPlatform }
func (d *Dir) Lstat(string) (fs.FileInfo, error)                   { return nil, errPlatform }
func (d *Dir) Stat() (fs.FileInfo, error)                          { return nil, errPlatform }
func (d *Dir) Chmod(fs.FileMode) error                             { return errPlatform }
func (d *Dir) Chgrp(int) error                                     { return errPlatform }
func (d *Dir) Sync() error                                         { return errPlatform }
