package protocol

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// TestShareRunDir: a Job running as another user than the agent writes
// its run directory, with the pod's fsGroup and without one; no other
// user replaces the agent's status.json there. As root the writer is a
// real process of uid 4242; elsewhere only the modes are checked.
func TestShareRunDir(t *testing.T) {
	group := int64(4343)
	for name, fsGroup := range map[string]*int64{"fsGroup": &group, "none": nil} {
		t.Run(name, func(t *testing.T) {
			l := Layout{Root: t.TempDir()}
			if err := os.MkdirAll(l.RunDir("r1"), 0o755); err != nil {
				t.Fatal(err)
			}
			for _, d := range []string{filepath.Dir(l.Root), l.Root} { // t.TempDir's are 0700
				if err := os.Chmod(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := WriteJSONAtomic(l.RunFile("r1", StatusFile), Status{ID: "r1"}); err != nil {
				t.Fatal(err)
			}
			if err := ShareRunDir(l, "r1", fsGroup); err != nil {
				t.Fatal(err)
			}
			fi, _ := os.Stat(l.RunDir("r1"))
			wantMode := fs.ModeSticky | 0o777
			if fsGroup != nil && os.Geteuid() == 0 {
				wantMode = fs.ModeSetgid | 0o775
			}
			if got := fi.Mode() & (fs.ModePerm | fs.ModeSticky | fs.ModeSetgid); got != wantMode {
				t.Errorf("mode %v, want %v", got, wantMode)
			}
			if os.Geteuid() != 0 {
				return
			}
			cred := &syscall.Credential{Uid: 4242, Gid: 4242}
			if fsGroup != nil {
				cred.Groups = []uint32{uint32(*fsGroup)}
			}
			asJob := func(script string) error {
				cmd := exec.Command("sh", "-c", script)
				cmd.Dir = "/"
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
				return cmd.Run()
			}
			if err := asJob("echo ok > " + filepath.Join(l.RunDir("r1"), "result.json")); err != nil {
				t.Errorf("the Job's user cannot write its run directory: %v", err)
			}
			if fsGroup == nil {
				// The forger's own file, in a directory the test removes.
				scratch := filepath.Join(filepath.Dir(l.Root), "scratch")
				if err := os.Mkdir(scratch, 0o777); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(scratch, 0o777); err != nil {
					t.Fatal(err)
				}
				forged := filepath.Join(scratch, "forged")
				if err := asJob("echo forged > " + forged + " && mv -f " + forged + " " + l.RunFile("r1", StatusFile)); err == nil {
					t.Errorf("another user replaced status.json")
				}
				if _, err := os.Stat(forged); err != nil {
					t.Errorf("the other user could not write its own file, so the check proves nothing: %v", err)
				}
			}
		})
	}
}
