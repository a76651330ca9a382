package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Options describe the cluster to start.
type Options struct {
	// BinDir holds etcd, kube-apiserver, kube-controller-manager,
	// kube-scheduler and kubelet (hack/build-bins.sh prints it).
	BinDir string
	// WorkDir receives certificates, data, logs and the state file.
	WorkDir string
	// FakeNodes is the number of kwok nodes (no root; BinDir holds kwok).
	// Pods on them run no container; see FakeNodeLabel.
	FakeNodes int
	// Jaeger starts Jaeger (BinDir holds it) with its OTLP receivers where
	// the cluster's pods reach them and its UI on JaegerQueryAddr.
	Jaeger          bool
	JaegerQueryAddr string
	// Audit has the API server record every request (metadata only, one
	// JSON line each) in Cluster.AuditLog: who asked what, by user agent.
	Audit bool
}

// Cluster is a running cluster.
type Cluster struct {
	// Kubeconfig is an admin (system:masters) kubeconfig file.
	Kubeconfig string
	// Server is the API server's URL; Token authenticates as admin.
	Server string
	Token  string
	// Jaeger is set when Options.Jaeger asked for it.
	Jaeger *Jaeger
	// AuditLog is the API server's audit log when Options.Audit asked for it.
	AuditLog string
	state    *State
	etcd     string
}

// State is what `cluster down` needs to remove a cluster whose starter is
// gone: every process it started.
type State struct {
	WorkDir string  `json:"workDir"`
	Owner   int     `json:"owner"`
	Procs   []*proc `json:"procs"`
}

const (
	adminToken = "magekube-admin-token"
	// StateFile is the name of the state file in the work directory.
	StateFile = "state.json"
)

// Start brings the cluster up and waits until it is ready. On error
// everything started so far is stopped again.
func Start(ctx context.Context, o Options) (c *Cluster, err error) {
	if err := os.MkdirAll(o.WorkDir, 0o755); err != nil {
		return nil, err
	}
	c = &Cluster{Token: adminToken, state: &State{WorkDir: o.WorkDir, Owner: os.Getpid()}}
	defer func() {
		if err != nil {
			c.Stop()
			c = nil
		}
	}()
	if err := c.save(); err != nil {
		return c, err
	}
	host := "127.0.0.1"
	if err := c.startControlPlane(ctx, o, host); err != nil {
		return c, err
	}
	if o.FakeNodes > 0 {
		if err := c.startKwok(ctx, o); err != nil {
			return c, fmt.Errorf("kwok: %w", err)
		}
	}
	if err := c.waitNodesReady(ctx, o.FakeNodes); err != nil {
		return c, err
	}
	if o.Jaeger {
		c.Jaeger, err = StartJaeger(ctx, o.BinDir, c.dir("logs"), JaegerOptions{Host: host, QueryAddr: o.JaegerQueryAddr})
		if err != nil {
			return c, err
		}
		if err := c.track(c.Jaeger.proc); err != nil {
			return c, err
		}
	}
	return c, nil
}

func (c *Cluster) save() error {
	data, err := json.MarshalIndent(c.state, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(c.state.WorkDir, StateFile), data, 0o644)
}

func (c *Cluster) dir(parts ...string) string {
	return filepath.Join(append([]string{c.state.WorkDir}, parts...)...)
}

func (c *Cluster) track(p *proc) error {
	c.state.Procs = append(c.state.Procs, p)
	return c.save()
}

// Stop removes everything the cluster started; it is safe to call twice.
func (c *Cluster) Stop() {
	if c == nil || c.state == nil {
		return
	}
	Teardown(c.state)
}

// RESTConfig is an admin client config for the cluster.
func (c *Cluster) RESTConfig() (*rest.Config, error) {
	return clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
}

// Client is an admin clientset for the cluster.
func (c *Cluster) Client() (kubernetes.Interface, error) {
	cfg, err := c.RESTConfig()
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// freePort asks the kernel for an unused TCP port on host.
func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitHTTP waits until url answers 200 (with the admin token), or the
// process behind it dies, or ctx ends.
func waitHTTP(ctx context.Context, url, caFile string, p *proc, timeout time.Duration) error {
	pool := x509.NewCertPool()
	if ca, err := os.ReadFile(caFile); err == nil {
		pool.AppendCertsFromPEM(ca)
	}
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	deadline := time.Now().Add(timeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if p.cmd != nil && p.cmd.ProcessState != nil {
			return fmt.Errorf("%s exited:\n%s", p.Name, tail(p.Log))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s not ready at %s after %s:\n%s", p.Name, url, timeout, tail(p.Log))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Detach hands the cluster over to `down`: the state file no longer names
// this process as its owner, so it is not torn down as stale when it exits.
func (c *Cluster) Detach() error {
	c.state.Owner = 0
	return c.save()
}

// StopComponent stops a running component by name (e.g. "kube-apiserver")
// as an outage would; StartComponent starts it again with the same
// command line. Fault tests use them.
func (c *Cluster) StopComponent(name string) error {
	p := c.proc(name)
	if p == nil {
		return fmt.Errorf("no component %q", name)
	}
	stopGroup(p.PID, 10*time.Second)
	return nil
}

// StartComponent restarts a component stopped with StopComponent.
func (c *Cluster) StartComponent(name string) error {
	p := c.proc(name)
	if p == nil {
		return fmt.Errorf("no component %q", name)
	}
	np, err := startProc(filepath.Dir(p.Log), p.Name, p.Netns, p.Argv, p.Env)
	if err != nil {
		return err
	}
	*p = *np
	return c.save()
}

func (c *Cluster) proc(name string) *proc {
	for _, p := range c.state.Procs {
		if p.Name == name {
			return p
		}
	}
	return nil
}
