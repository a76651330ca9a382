package share

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Dir is an open directory on the shared volume. Names passed to its
// methods are single path components: never "", ".", "..", or with a "/".
// A Dir stays the directory it was opened as, wherever it is moved.
type Dir struct {
	f    *os.File
	path string // for messages and the file watcher
}

// OpenDir opens path as a directory; its last component is not followed
// if it is a link (the ones above it are the operator's mount path).
func OpenDir(path string) (*Dir, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, dirError(path, err)
	}
	return &Dir{f: os.NewFile(uintptr(fd), path), path: path}, nil
}

// Path is the directory's path when it was opened.
func (d *Dir) Path() string { return d.path }

// Close closes the directory.
func (d *Dir) Close() error { return d.f.Close() }

func (d *Dir) fd() int { return int(d.f.Fd()) }

func (d *Dir) join(name string) string { return d.path + "/" + name }

// checkName refuses anything but one path component.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') || strings.ContainsRune(name, 0) {
		return fmt.Errorf("%q is not a single file name", name)
	}
	return nil
}

// Dir opens the directory name in d, refusing a link.
func (d *Dir) Dir(name string) (*Dir, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	fd, err := unix.Openat(d.fd(), name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, dirError(d.join(name), err)
	}
	return &Dir{f: os.NewFile(uintptr(fd), d.join(name)), path: d.join(name)}, nil
}

// MakeDir opens the directory name in d, making it with perm when it is
// missing; a link or other file there is an error, never followed.
func (d *Dir) MakeDir(name string, perm fs.FileMode) (*Dir, error) {
	if err := d.Mkdir(name, perm); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	return d.Dir(name)
}

// Mkdir makes the directory name in d; fs.ErrExist if anything is there.
func (d *Dir) Mkdir(name string, perm fs.FileMode) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := unix.Mkdirat(d.fd(), name, uint32(perm.Perm())); err != nil {
		return &fs.PathError{Op: "mkdir", Path: d.join(name), Err: err}
	}
	return nil
}

func dirError(path string, err error) error {
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		return fmt.Errorf("%s: %w", path, ErrNotDir)
	}
	return &fs.PathError{Op: "open", Path: path, Err: err}
}

// Open opens the regular file name in d (flag as os.OpenFile takes it)
// without following a link or blocking on a FIFO; anything but a regular
// file is ErrNotRegular.
func (d *Dir) Open(name string, flag int, perm fs.FileMode) (*os.File, fs.FileInfo, error) {
	if err := checkName(name); err != nil {
		return nil, nil, err
	}
	fd, err := unix.Openat(d.fd(), name, flag|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, uint32(perm.Perm()))
	if errors.Is(err, unix.ELOOP) {
		return nil, nil, fmt.Errorf("%s: a symbolic link: %w", d.join(name), ErrNotRegular)
	}
	if err != nil {
		return nil, nil, &fs.PathError{Op: "open", Path: d.join(name), Err: err}
	}
	f := os.NewFile(uintptr(fd), d.join(name))
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s: a %s: %w", d.join(name), FileKind(fi.Mode()), ErrNotRegular)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// ReadFile reads the regular file name in d, of at most max bytes.
func (d *Dir) ReadFile(name string, max int64) ([]byte, fs.FileInfo, error) {
	f, fi, err := d.Open(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	if fi.Size() > max {
		return nil, nil, &TooLargeError{Path: d.join(name), Size: fi.Size(), Max: max}
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", d.join(name), err)
	}
	if int64(len(data)) > max { // grew while read
		return nil, nil, &TooLargeError{Path: d.join(name), Size: int64(len(data)), Max: max}
	}
	return data, fi, nil
}

// WriteFile replaces name in d with data so that a reader sees the old
// content or the new, never a part: a temporary file in d, renamed over
// name. durable adds an fsync of the file and of d. A link at name is
// replaced, never followed.
func (d *Dir) WriteFile(name string, data []byte, perm fs.FileMode, durable bool) (err error) {
	if err := checkName(name); err != nil {
		return err
	}
	tmp, f, err := d.createTemp(name, perm)
	if err != nil {
		return fmt.Errorf("write %s: %w", d.join(name), err)
	}
	defer func() {
		if err != nil {
			f.Close()
			_ = unix.Unlinkat(d.fd(), tmp, 0)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", d.join(name), err)
	}
	if err = f.Chmod(perm); err != nil { // whatever the umask
		return fmt.Errorf("write %s: %w", d.join(name), err)
	}
	if durable {
		if err = f.Sync(); err != nil {
			return fmt.Errorf("write %s: %w", d.join(name), err)
		}
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", d.join(name), err)
	}
	if err = unix.Renameat(d.fd(), tmp, d.fd(), name); err != nil {
		return fmt.Errorf("write %s: %w", d.join(name), err)
	}
	if durable {
		return d.Sync()
	}
	return nil
}

// createTemp makes a new file named after name in d (exclusive, never a
// link followed).
func (d *Dir) createTemp(name string, perm fs.FileMode) (string, *os.File, error) {
	for range 100 {
		tmp := fmt.Sprintf(".%s.tmp-%d", name, time.Now().UnixNano()%1e9)
		fd, err := unix.Openat(d.fd(), tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm.Perm()))
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return "", nil, err
		}
		return tmp, os.NewFile(uintptr(fd), d.join(tmp)), nil
	}
	return "", nil, errors.New("no free temporary name")
}

// Create makes the regular file name in d, exclusively; fs.ErrExist if
// anything (a link included) is there.
func (d *Dir) Create(name string, perm fs.FileMode) error {
	f, _, err := d.Open(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	return f.Close()
}

// Rename moves name in d to newName in to, both relative to their open
// directories.
func (d *Dir) Rename(name string, to *Dir, newName string) error {
	if err := errors.Join(checkName(name), checkName(newName)); err != nil {
		return err
	}
	if err := unix.Renameat(d.fd(), name, to.fd(), newName); err != nil {
		return &os.LinkError{Op: "rename", Old: d.join(name), New: to.join(newName), Err: err}
	}
	return nil
}

// Remove removes the file, link or empty directory name in d.
func (d *Dir) Remove(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	err := unix.Unlinkat(d.fd(), name, 0)
	if errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EPERM) {
		err = unix.Unlinkat(d.fd(), name, unix.AT_REMOVEDIR)
	}
	if err != nil {
		return &fs.PathError{Op: "remove", Path: d.join(name), Err: err}
	}
	return nil
}

// RemoveAll removes name in d and, when it is a directory, everything in
// it; a link is removed, never followed. Missing is no error.
func (d *Dir) RemoveAll(name string) error {
	fi, err := d.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		sub, err := d.Dir(name)
		if err != nil {
			return err
		}
		entries, err := sub.Entries()
		for _, e := range entries {
			err = errors.Join(err, sub.RemoveAll(e))
		}
		sub.Close()
		if err != nil {
			return err
		}
	}
	if err := d.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Entries lists the names in d (not . and ..), sorted, as os.ReadDir
// does: the agent takes a batch of requests in their names' order.
func (d *Dir) Entries() ([]string, error) {
	fd, err := unix.Openat(d.fd(), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: d.path, Err: err}
	}
	f := os.NewFile(uintptr(fd), d.path)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", d.path, err)
	}
	slices.Sort(names)
	return names, nil
}

// Lstat describes name in d itself (a link as a link).
func (d *Dir) Lstat(name string) (fs.FileInfo, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(d.fd(), name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: d.join(name), Err: err}
	}
	return fileInfo{name: name, st: st}, nil
}

// Stat describes d itself.
func (d *Dir) Stat() (fs.FileInfo, error) { return d.f.Stat() }

// Chmod sets d's mode (permission, setgid and sticky bits).
func (d *Dir) Chmod(mode fs.FileMode) error { return d.f.Chmod(mode) }

// Chgrp gives d to group gid.
func (d *Dir) Chgrp(gid int) error { return d.f.Chown(-1, gid) }

// Sync flushes d's entries to disk (ignored where the file system cannot).
func (d *Dir) Sync() error {
	if err := d.f.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("sync %s: %w", d.path, err)
	}
	return nil
}

type fileInfo struct {
	name string
	st   unix.Stat_t
}

func (fi fileInfo) Name() string       { return fi.name }
func (fi fileInfo) Size() int64        { return fi.st.Size }
func (fi fileInfo) ModTime() time.Time { return time.Unix(fi.st.Mtim.Unix()) }
func (fi fileInfo) IsDir() bool        { return fi.Mode().IsDir() }
func (fi fileInfo) Sys() any           { return &fi.st }
func (fi fileInfo) Mode() fs.FileMode {
	m := fs.FileMode(fi.st.Mode & 0o777)
	switch fi.st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		m |= fs.ModeDir
	case unix.S_IFLNK:
		m |= fs.ModeSymlink
	case unix.S_IFIFO:
		m |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		m |= fs.ModeSocket
	case unix.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		m |= fs.ModeDevice
	}
	if fi.st.Mode&unix.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if fi.st.Mode&unix.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}
