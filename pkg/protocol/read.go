package protocol

import (
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/magekube/magekube/pkg/share"
)

// Caps on what the agent reads from the shared volume, which every Job
// pod can write: nothing there may block, crash or bloat the agent.
const (
	// MaxFileBytes caps status.json, result.json and a span file.
	MaxFileBytes = 1 << 20
	// MaxConfigBytes caps one metadata.yaml (a YAML document costs tens of
	// times its size to decode).
	MaxConfigBytes = 2 << 20
)

// ErrNotRegular is returned for a symbolic link, FIFO, device or
// directory where a regular file is expected (share's, so errors.Is
// matches either package's).
var ErrNotRegular = share.ErrNotRegular

// FileTooLargeError is returned for a file over its cap.
type FileTooLargeError = share.TooLargeError

// ReadFileSafe reads path as a regular file of at most max bytes: without
// following a symbolic link, without blocking on a FIFO or device, and
// without reading past max. Errors name the file.
func ReadFileSafe(path string, max int64) ([]byte, error) {
	f, fi, err := OpenRegular(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi.Size() > max {
		return nil, &FileTooLargeError{Path: path, Size: fi.Size(), Max: max}
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > max { // grew while read
		return nil, &FileTooLargeError{Path: path, Size: int64(len(data)), Max: max}
	}
	return data, nil
}

// OpenRegular opens path (flag as os.OpenFile takes it) only as a regular
// file: a symbolic link is not followed and a FIFO or device does not
// block the open; anything else is ErrNotRegular, naming the file. Every
// open of a file on the shared volume that a pod may have planted goes
// through it.
func OpenRegular(path string, flag int, perm fs.FileMode) (*os.File, fs.FileInfo, error) {
	f, err := os.OpenFile(path, flag|openSafe, perm)
	if isLinkError(err) {
		return nil, nil, fmt.Errorf("%s: a symbolic link: %w", path, ErrNotRegular)
	}
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s: a %s: %w", path, share.FileKind(fi.Mode()), ErrNotRegular)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// SafeDirFS is os.DirFS for a tree on the shared volume: ReadFile (what
// fs.ReadFile uses) reads through ReadFileSafe with the given cap.
type SafeDirFS struct {
	fs.FS
	Dir string
	Max int64
}

// NewSafeDirFS returns a SafeDirFS rooted at dir.
func NewSafeDirFS(dir string, max int64) SafeDirFS {
	return SafeDirFS{FS: os.DirFS(dir), Dir: dir, Max: max}
}

// ReadFile implements fs.ReadFileFS.
func (s SafeDirFS) ReadFile(name string) ([]byte, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: fs.ErrInvalid}
	}
	return ReadFileSafe(s.Dir+"/"+name, s.Max)
}

// Stat implements fs.StatFS the way ReadFile reads: it opens the file
// (on NFS the open revalidates the file's attributes, as a read's would)
// without following a symbolic link or blocking on a FIFO, and stats the
// open file. Anything but a regular file is ErrNotRegular.
func (s SafeDirFS) Stat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrInvalid}
	}
	f, fi, err := OpenRegular(s.Dir+"/"+name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	f.Close()
	return fi, nil
}
