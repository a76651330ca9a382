package share

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func mustOpen(t *testing.T, path string) *Dir {
	t.Helper()
	d, err := OpenDir(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestNoLinkFollowed: every operation refuses or replaces a link a writer
// planted, and never acts on what it points to.
func TestNoLinkFollowed(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	victim := filepath.Join(root, "victim")
	if err := os.Mkdir(victim, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(victim, "status.json"), "victim's")
	for _, name := range []string{"dirlink", "filelink"} {
		target := "victim"
		if name == "filelink" {
			target = "victim/status.json"
		}
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	d := mustOpen(t, root)

	if _, err := d.Dir("dirlink"); !errors.Is(err, ErrNotDir) {
		t.Errorf("Dir on a link: %v, want ErrNotDir", err)
	}
	if _, err := d.MakeDir("dirlink", 0o755); !errors.Is(err, ErrNotDir) {
		t.Errorf("MakeDir on a link: %v, want ErrNotDir", err)
	}
	if _, _, err := d.ReadFile("filelink", 1<<20); !errors.Is(err, ErrNotRegular) {
		t.Errorf("ReadFile on a link: %v, want ErrNotRegular", err)
	}
	if _, err := OpenDir(filepath.Join(root, "dirlink")); !errors.Is(err, ErrNotDir) {
		t.Errorf("OpenDir on a link: %v, want ErrNotDir", err)
	}
	if err := d.WriteFile("filelink", []byte("forged"), 0o644, true); err != nil {
		t.Fatal(err)
	}
	if err := d.RemoveAll("dirlink"); err != nil {
		t.Fatal(err)
	}
	if err := d.Create("filelink", 0o644); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Create over a file: %v, want ErrExist", err)
	}
	data, err := os.ReadFile(filepath.Join(victim, "status.json"))
	if err != nil || string(data) != "victim's" {
		t.Errorf("the link's target changed: %q, %v", data, err)
	}
	if fi, err := os.Lstat(filepath.Join(root, "filelink")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("WriteFile did not replace the link with a file: %v %v", fi, err)
	}
	if _, err := os.Lstat(filepath.Join(root, "dirlink")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("RemoveAll left the link: %v", err)
	}
	for _, name := range []string{"", ".", "..", "a/b", "../victim"} {
		if _, err := d.Dir(name); err == nil {
			t.Errorf("Dir(%q) accepted", name)
		}
	}
}

// TestOpenDirStaysPut: an open Dir is the directory it was opened as; a
// writer that renames it away and plants a link at its name redirects
// nothing.
func TestOpenDirStaysPut(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	for _, dir := range []string{"rejected", "victim"} {
		if err := os.Mkdir(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(root, "victim", "status.json"), "victim's")
	write(t, filepath.Join(root, "status.json"), "forged")
	d := mustOpen(t, root)
	rejected, err := d.Dir("rejected")
	if err != nil {
		t.Fatal(err)
	}
	defer rejected.Close()
	if err := os.Rename(filepath.Join(root, "rejected"), filepath.Join(root, "moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("victim", filepath.Join(root, "rejected")); err != nil {
		t.Fatal(err)
	}
	if err := d.Rename("status.json", rejected, "status.json"); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(filepath.Join(root, "victim", "status.json")); string(data) != "victim's" {
		t.Errorf("victim's status: %q", data)
	}
	if data, _ := os.ReadFile(filepath.Join(root, "moved", "status.json")); string(data) != "forged" {
		t.Errorf("the rejected file is not in the directory opened at start: %q", data)
	}
}

// TestSpecialFiles: a FIFO is refused without blocking, and a file over
// the cap unread.
func TestSpecialFiles(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(root, "big"), "0123456789")
	d := mustOpen(t, root)
	if _, _, err := d.ReadFile("fifo", 100); !errors.Is(err, ErrNotRegular) {
		t.Errorf("FIFO: %v", err)
	}
	var tooLarge *TooLargeError
	if _, _, err := d.ReadFile("big", 5); !errors.As(err, &tooLarge) {
		t.Errorf("over the cap: %v", err)
	}
	if data, _, err := d.ReadFile("big", 10); err != nil || string(data) != "0123456789" {
		t.Errorf("at the cap: %q %v", data, err)
	}
}

// TestRemoveAllDoesNotFollow: a tree with links inside is removed, the
// links' targets kept.
func TestRemoveAllDoesNotFollow(t *testing.T) {
	t.Parallel()
	root, keep := t.TempDir(), t.TempDir()
	write(t, filepath.Join(keep, "precious"), "x")
	if err := os.MkdirAll(filepath.Join(root, "run", "spans"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(keep, filepath.Join(root, "run", "spans", "out")); err != nil {
		t.Fatal(err)
	}
	d := mustOpen(t, root)
	if err := d.RemoveAll("run"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(keep, "precious")); err != nil {
		t.Errorf("a link's target was removed: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(root, "run")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("run still there: %v", err)
	}
}

// TestEntriesSorted: names come sorted, as os.ReadDir gives them (the
// agent admits a batch of requests in that order).
func TestEntriesSorted(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	for _, name := range []string{"b", "c", "a", "a0"} {
		write(t, filepath.Join(root, name), "")
	}
	names, err := mustOpen(t, root).Entries()
	if err != nil || strings.Join(names, ",") != "a,a0,b,c" {
		t.Errorf("entries %v, %v", names, err)
	}
}
