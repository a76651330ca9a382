package dispatch

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/magekube/magekube/pkg/protocol"
	"github.com/magekube/magekube/pkg/share"
	"github.com/magekube/magekube/pkg/telemetry"
)

// openTestVolume opens the agent's directories under l.Root for a test,
// closed when it ends.
func openTestVolume(t testing.TB, l protocol.Layout) *volume {
	t.Helper()
	v, err := openVolume(l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.close)
	return v
}

// TestVolumeRefusesLinks: the agent does not start where one of its own
// directories is a link a writer planted, and says which.
func TestVolumeRefusesLinks(t *testing.T) {
	t.Parallel()
	for _, planted := range []string{"requests", "runs", "agent", "requests/.rejected", "runs/.squatted"} {
		t.Run(planted, func(t *testing.T) {
			t.Parallel()
			l := protocol.Layout{Root: t.TempDir()}
			victim := filepath.Join(l.Root, "victim")
			if err := os.MkdirAll(filepath.Join(l.Root, filepath.Dir(planted)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(victim, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(victim, filepath.Join(l.Root, planted)); err != nil {
				t.Fatal(err)
			}
			_, err := openVolume(l)
			if !errors.Is(err, share.ErrNotDir) || !strings.Contains(err.Error(), planted) {
				t.Errorf("openVolume: %v; want an error naming %s", err, planted)
			}
		})
	}
}

// TestShareRunDir: a Job running as another user than the agent writes
// its run directory, with the pod's fsGroup and without one, and no other
// user, a member of the group included, replaces the agent's status.json
// there: the directory is sticky in both modes (03775 with an fsGroup,
// 01777 without). As root the writer is a real process of uid 4242;
// elsewhere only the modes are checked.
func TestShareRunDir(t *testing.T) {
	group := int64(4343)
	for name, fsGroup := range map[string]*int64{"fsGroup": &group, "none": nil} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			for _, d := range []string{filepath.Dir(root), root} { // t.TempDir's are 0700
				if err := os.Chmod(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			v := openTestVolume(t, protocol.Layout{Root: root})
			if err := v.runs.Mkdir("r1", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := v.writeRunJSON("r1", protocol.StatusFile, protocol.Status{ID: "r1"}, true); err != nil {
				t.Fatal(err)
			}
			if err := v.shareRunDir("r1", fsGroup); err != nil {
				t.Fatal(err)
			}
			fi, _ := v.runs.Lstat("r1")
			wantMode := fs.ModeSticky | 0o777
			if fsGroup != nil && os.Geteuid() == 0 {
				wantMode = fs.ModeSticky | fs.ModeSetgid | 0o775
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
			asJob := func(script string) ([]byte, error) {
				cmd := exec.Command("sh", "-c", script)
				cmd.Dir = "/"
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
				return cmd.CombinedOutput()
			}
			dir := filepath.Join(root, protocol.RunsDir, "r1")
			if out, err := asJob("echo ok > " + filepath.Join(dir, "result.json")); err != nil {
				t.Fatalf("the Job's user cannot write its run directory: %v %s", err, out)
			}
			// The forger's own file, in the run directory itself: a rename
			// there is what the sticky bit refuses.
			forged := filepath.Join(dir, "forged")
			if out, err := asJob("echo forged > " + forged + " && mv -f " + forged + " " + filepath.Join(dir, protocol.StatusFile)); err == nil {
				t.Errorf("another user replaced status.json: %s", out)
			}
			if _, err := os.Stat(forged); err != nil {
				t.Errorf("the other user could not write its own file, so the check proves nothing: %v", err)
			}
			var st protocol.Status
			if err := v.readRunJSON("r1", protocol.StatusFile, &st); err != nil || st.ID != "r1" {
				t.Errorf("status after the attempt: %+v %v", st, err)
			}
		})
	}
}

// TestClaim: the claim moves the request into a new run directory; a
// second claim of the same id is ErrClaimed.
func TestClaim(t *testing.T) {
	t.Parallel()
	l := protocol.Layout{Root: t.TempDir()}
	v := openTestVolume(t, l)
	if err := os.WriteFile(l.RequestPath("r1"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := v.claim("r1.json", "r1"); err != nil {
		t.Fatal(err)
	}
	if !v.runHas("r1", protocol.RequestFile) {
		t.Error("request not moved")
	}
	if _, err := os.Stat(l.RequestPath("r1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("request still in requests/: %v", err)
	}
	if err := v.claim("r1.json", "r1"); !errors.Is(err, protocol.ErrClaimed) {
		t.Errorf("second claim: want ErrClaimed, got %v", err)
	}
}

// TestMainEnded: where a block may read its runner's key, a sealed
// success waits for the pod's status to show the main container's end.
func TestMainEnded(t *testing.T) {
	t.Parallel()
	job := &batchv1.Job{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main"}}}}}}
	pod := func(name string, terminated bool) *corev1.Pod {
		st := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
		if terminated {
			st = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{}}
		}
		return &corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: name, State: st}}}}
	}
	for name, tc := range map[string]struct {
		job  *batchv1.Job
		pods []*corev1.Pod
		want bool
	}{
		"running":             {job, []*corev1.Pod{pod("main", false)}, false},
		"ended":               {job, []*corev1.Pod{pod("main", false), pod("main", true)}, true},
		"another container":   {job, []*corev1.Pod{pod("sidecar", true)}, false},
		"no Job in the cache": {nil, []*corev1.Pod{pod("main", true)}, false},
		"no pod":              {job, nil, false},
	} {
		if got := mainEnded(tc.job, tc.pods); got != tc.want {
			t.Errorf("%s: %v, want %v", name, got, tc.want)
		}
	}
}

// TestSpanFilesBounded: a run's span files are read within maxSpanFiles
// files and maxSpanBytes in all, whatever a pod writes in its spans/.
func TestSpanFilesBounded(t *testing.T) {
	t.Parallel()
	l := protocol.Layout{Root: t.TempDir()}
	v := openTestVolume(t, l)
	trace := telemetry.NewTraceID()
	spanFile := func(pad int) []byte {
		span := telemetry.Span{TraceID: trace.String(), SpanID: telemetry.NewSpanID().String(), Name: "s",
			Attributes: []telemetry.KeyValue{telemetry.String("pad", strings.Repeat("x", pad))}}
		data, err := json.Marshal(telemetry.SpanFile("t", nil, span))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	a := &Agent{vol: v, log: slog.New(slog.DiscardHandler)}
	for name, tc := range map[string]struct {
		files, pad, want int
	}{
		"many small":  {100, 10, maxSpanFiles},
		"a few large": {8, 300 << 10, 3}, // 3 × 300 KiB fit in 1 MiB; the 4th is refused unread
	} {
		if err := v.runs.Mkdir(name, 0o755); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(l.Runs(), name, protocol.SpansDir)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i := range tc.files {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("s%03d.json", i)), spanFile(tc.pad), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		d, err := v.runDir(name)
		if err != nil {
			t.Fatal(err)
		}
		r := &run{id: name, trace: telemetry.SpanContext{TraceID: trace}}
		if got := len(a.spanFiles(r, d)); got != tc.want {
			t.Errorf("%s: %d span files read, want %d", name, got, tc.want)
		}
		d.Close()
	}
}
