package framework

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/magekube/magekube/test/cluster"
	"github.com/magekube/magekube/test/images"
)

// Env is the cluster a suite runs against.
type Env struct {
	Kubeconfig string
	Client     kubernetes.Interface
	// Images name the test images as the cluster's nodes know them.
	AgentImage, ServerImage string
	// MageImage is the real Mage server (the pinned mage-ai), its database
	// PostgresImage, and JaegerImage Jaeger all-in-one; on kind only.
	MageImage, PostgresImage, JaegerImage string
	// BinDir holds the pinned tools (kubectl, jaeger): hack/build-bins.sh.
	BinDir string
	// SharedDir is a directory that the test process and every node see
	// at the same path (Mage's RWX project volume), or "".
	SharedDir string
	// SharedFS: SharedDir is a tmpfs of its own (SetupKind), which a test
	// may fill to see the cluster with its project volume full.
	SharedFS bool
	// FakeNodes is the number of kwok nodes (see cluster.FakeNodeLabel);
	// 0 on a cluster this suite did not start.
	FakeNodes int
	// AuditLog is the API server's audit log (JSON lines), when the
	// cluster keeps one (KindOptions.Audit), or "".
	AuditLog string
	// Cluster is the control-plane cluster this suite started (nil on kind or a cluster
	// given by kubeconfig); fault tests stop and start its components.
	Cluster *cluster.Cluster
	stop    func()
}

// Setup returns the suite's cluster. With KUBECONFIG set it uses that
// cluster; otherwise it starts the control-plane cluster (test/cluster)
// with fakeNodes kwok nodes. A missing prerequisite skips the suite,
// except under CI=true, where it fails.
func Setup(fakeNodes int) (*Env, error) {
	if kc := os.Getenv("MAGEKUBE_E2E_KUBECONFIG"); kc != "" {
		return fromKubeconfig(kc)
	}
	binDir := os.Getenv("MAGEKUBE_BIN_DIR")
	if binDir == "" {
		return nil, prerequisite("MAGEKUBE_BIN_DIR is not set (hack/test-integration.sh sets it from hack/build-bins.sh)")
	}
	cluster.DownStale(false)
	work := filepath.Join(cluster.Root, fmt.Sprintf("suite-%d", os.Getpid()))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := cluster.Start(ctx, cluster.Options{BinDir: binDir, WorkDir: work, FakeNodes: fakeNodes})
	if err != nil {
		return nil, err
	}
	shared := filepath.Join(work, "shared")
	if err := os.MkdirAll(shared, 0o777); err != nil {
		c.Stop()
		return nil, err
	}
	client, err := c.Client()
	if err != nil {
		c.Stop()
		return nil, err
	}
	return &Env{
		Kubeconfig: c.Kubeconfig, Client: client, SharedDir: shared, FakeNodes: fakeNodes, Cluster: c,
		AgentImage: images.Agent, ServerImage: images.Server, BinDir: binDir,
		stop: c.Stop,
	}, nil
}

func fromKubeconfig(path string) (*Env, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Env{
		Kubeconfig: path, Client: client,
		AgentImage:  envOr("MAGEKUBE_E2E_AGENT_IMAGE", images.Agent),
		ServerImage: envOr("MAGEKUBE_E2E_SERVER_IMAGE", images.Server),
		SharedDir:   os.Getenv("MAGEKUBE_E2E_SHARED_DIR"),
		stop:        func() {},
	}, nil
}

// RESTConfig is an admin client config for the cluster.
func (e *Env) RESTConfig() (*rest.Config, error) {
	return clientcmd.BuildConfigFromFlags("", e.Kubeconfig)
}

// Teardown stops what Setup started.
func (e *Env) Teardown() {
	if e != nil && e.stop != nil {
		e.stop()
	}
}

// ErrSkip marks a missing prerequisite outside CI.
type ErrSkip struct{ Reason string }

func (e *ErrSkip) Error() string { return e.Reason }

func prerequisite(reason string) error {
	if os.Getenv("CI") == "true" {
		return fmt.Errorf("missing prerequisite under CI=true: %s", reason)
	}
	return &ErrSkip{Reason: reason}
}

// Namespace creates a namespace for one test and deletes it afterwards.
func (e *Env) Namespace(t *testing.T, prefix string) string {
	t.Helper()
	ns, err := e.Client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.Client.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	})
	if err := e.WaitServiceAccount(t.Context(), ns.Name); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// WaitServiceAccount waits up to 30 s for the namespace's default service
// account, which its pods use: a pod created before it is refused.
func (e *Env) WaitServiceAccount(ctx context.Context, ns string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := e.Client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{}); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("namespace %s has no default service account after 30s", ns)
}

// RepoRoot is the module root, the directory of go.mod.
func RepoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// Main runs a suite's tests around Setup and Teardown.
func Main(m *testing.M, fakeNodes int, env **Env) int {
	return run(m, env, func() (*Env, error) { return Setup(fakeNodes) })
}

func run(m *testing.M, env **Env, setup func() (*Env, error)) int {
	e, err := setup()
	var skip *ErrSkip
	if errors.As(err, &skip) {
		fmt.Fprintln(os.Stderr, "SKIP suite:", skip.Reason)
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "suite setup:", err)
		return 1
	}
	defer e.Teardown()
	defer RemoveBinaries()
	*env = e
	return m.Run()
}

// mustResolve follows the symlinks of hack/build-bins.sh's directory to
// the versioned build (bin-jaeger-v1.76.0/jaeger), or returns p.
func mustResolve(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}

// MainKind runs a suite's tests on SetupKind's cluster.
func MainKind(m *testing.M, env **Env) int {
	return run(m, env, SetupKind)
}

// Kubectl runs the pinned kubectl (BinDir) against the suite's cluster in
// namespace ns with stdin, failing the test with its output on an error.
func (e *Env) Kubectl(t *testing.T, ns, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), filepath.Join(e.BinDir, "kubectl"), append([]string{"--kubeconfig", e.Kubeconfig, "-n", ns}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("kubectl %v: %v\n%s", args, err, out.String())
	}
	return out.String()
}
