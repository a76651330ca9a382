package protocol

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadFileSafe: what any pod can plant on the shared volume neither
// blocks nor bloats the reader.
func TestReadFileSafe(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(dir, "zero")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(file("target", []byte("{}")), link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		path    string
		want    string
		wantErr string
	}{
		{"regular", file("ok", []byte(`{"a":1}`)), `{"a":1}`, ""},
		{"FIFO", fifo, "", "a FIFO: not a regular file"},
		{"link to a device", zero, "", "a symbolic link: not a regular file"},
		{"link to a regular file", link, "", "a symbolic link"},
		{"device", "/dev/zero", "", "a device: not a regular file"},
		{"directory", dir, "", "a directory"},
		{"too large", file("big", make([]byte, 1025)), "", "is 1025 bytes; the limit is 1024"},
		{"missing", filepath.Join(dir, "nope"), "", "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			got, err := ReadFileSafe(tc.path, 1024)
			if d := time.Since(start); d > time.Second {
				t.Errorf("took %s", d)
			}
			switch {
			case tc.wantErr == "" && (err != nil || string(got) != tc.want):
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), tc.path)):
				t.Errorf("error %v, want one naming %s with %q", err, tc.path, tc.wantErr)
			}
		})
	}
	var tooLarge *FileTooLargeError
	if _, err := ReadFileSafe(filepath.Join(dir, "big"), 1024); !errors.As(err, &tooLarge) {
		t.Errorf("want a FileTooLargeError, got %v", err)
	}
}

// TestSafeDirFSStat: stat, which the config cache calls on every run,
// neither follows a planted link nor blocks on a planted FIFO.
func TestSafeDirFSStat(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "metadata.yaml"), []byte("a: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "metadata.yaml"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	fsys := NewSafeDirFS(dir, 1024)
	if fi, err := fsys.Stat("metadata.yaml"); err != nil || fi.Size() != 5 {
		t.Errorf("regular file: %v, %v", fi, err)
	}
	for name, want := range map[string]string{"fifo": "a FIFO", "link": "a symbolic link", "../x": "invalid argument", "nope": "no such file"} {
		start := time.Now()
		_, err := fsys.Stat(name)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", name, err, want)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s: took %s", name, d)
		}
	}
}
