package cluster

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

func (c *Cluster) startControlPlane(ctx context.Context, o Options, host string) error {
	for _, d := range []string{"pki", "logs", "etcd"} {
		if err := os.MkdirAll(c.dir(d), 0o755); err != nil {
			return err
		}
	}
	p, err := newPKI(c.dir("pki"))
	if err != nil {
		return err
	}
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(host), net.ParseIP("10.96.0.1")}
	dns := []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
	if err := p.issue("apiserver", "kube-apiserver", nil, ips, dns, x509.ExtKeyUsageServerAuth); err != nil {
		return err
	}
	if err := p.issue("apiserver-kubelet-client", "kube-apiserver-kubelet-client", []string{"system:masters"}, nil, nil, x509.ExtKeyUsageClientAuth); err != nil {
		return err
	}
	if err := p.serviceAccountKey(); err != nil {
		return err
	}
	tokens := fmt.Sprintf("%s,admin,admin-uid,system:masters\n", adminToken)
	if err := os.WriteFile(p.path("tokens.csv"), []byte(tokens), 0o600); err != nil {
		return err
	}

	if err := c.startEtcd(ctx, o); err != nil {
		return err
	}
	port, err := freePort(host)
	if err != nil {
		return err
	}
	c.Server = fmt.Sprintf("https://%s:%d", host, port)
	if err := c.writeKubeconfig(p, "admin.kubeconfig", adminToken); err != nil {
		return err
	}
	c.Kubeconfig = c.dir("admin.kubeconfig")

	audit, err := c.auditFlags(o)
	if err != nil {
		return err
	}
	api, err := startProc(c.dir("logs"), "kube-apiserver", "", append([]string{
		filepath.Join(o.BinDir, "kube-apiserver"),
		"--etcd-servers=" + c.etcdURL(),
		"--bind-address=" + host, "--advertise-address=" + host, fmt.Sprintf("--secure-port=%d", port),
		"--tls-cert-file=" + p.path("apiserver.crt"), "--tls-private-key-file=" + p.path("apiserver.key"),
		"--client-ca-file=" + p.path("ca.crt"),
		"--token-auth-file=" + p.path("tokens.csv"),
		"--authorization-mode=Node,RBAC",
		"--service-account-key-file=" + p.path("sa.pub"),
		"--service-account-signing-key-file=" + p.path("sa.key"),
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-cluster-ip-range=10.96.0.0/16",
		"--kubelet-client-certificate=" + p.path("apiserver-kubelet-client.crt"),
		"--kubelet-client-key=" + p.path("apiserver-kubelet-client.key"),
		"--kubelet-preferred-address-types=InternalIP",
		"--allow-privileged=true",
		"--cert-dir=" + c.dir("pki", "apiserver-generated"),
	}, audit...), nil)
	if err != nil {
		return err
	}
	if err := c.track(api); err != nil {
		return err
	}
	if err := waitHTTP(ctx, c.Server+"/readyz", p.path("ca.crt"), api, 90*time.Second); err != nil {
		return err
	}

	kcm, err := startProc(c.dir("logs"), "kube-controller-manager", "", []string{
		filepath.Join(o.BinDir, "kube-controller-manager"),
		"--kubeconfig=" + c.Kubeconfig,
		"--controllers=*,-nodeipam,-cloud-node-lifecycle,-route,-service",
		"--leader-elect=false",
		"--service-account-private-key-file=" + p.path("sa.key"),
		"--root-ca-file=" + p.path("ca.crt"),
		"--use-service-account-credentials=true",
		"--kube-api-qps=100", "--kube-api-burst=200",
		"--secure-port=0",
	}, nil)
	if err != nil {
		return err
	}
	if err := c.track(kcm); err != nil {
		return err
	}
	sched, err := startProc(c.dir("logs"), "kube-scheduler", "", []string{
		filepath.Join(o.BinDir, "kube-scheduler"),
		"--kubeconfig=" + c.Kubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
	}, nil)
	if err != nil {
		return err
	}
	if err := c.track(sched); err != nil {
		return err
	}
	return c.waitDefaultServiceAccount(ctx)
}

func (c *Cluster) startEtcd(ctx context.Context, o Options) error {
	client, err := freePort("127.0.0.1")
	if err != nil {
		return err
	}
	peer, err := freePort("127.0.0.1")
	if err != nil {
		return err
	}
	clientURL := fmt.Sprintf("http://127.0.0.1:%d", client)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peer)
	etcd, err := startProc(c.dir("logs"), "etcd", "", []string{
		filepath.Join(o.BinDir, "etcd"),
		"--data-dir=" + c.dir("etcd"),
		"--listen-client-urls=" + clientURL, "--advertise-client-urls=" + clientURL,
		"--listen-peer-urls=" + peerURL, "--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=default=" + peerURL,
		"--unsafe-no-fsync", "--quota-backend-bytes=4294967296",
	}, nil)
	if err != nil {
		return err
	}
	if err := c.track(etcd); err != nil {
		return err
	}
	c.etcd = clientURL
	return waitHTTP(ctx, clientURL+"/health", "", etcd, 30*time.Second)
}

func (c *Cluster) etcdURL() string { return c.etcd }

// writeKubeconfig writes a kubeconfig for the API server with a token.
func (c *Cluster) writeKubeconfig(p *pki, name, token string) error {
	ca, err := os.ReadFile(p.path("ca.crt"))
	if err != nil {
		return err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["magekube-test"] = &clientcmdapi.Cluster{Server: c.Server, CertificateAuthorityData: ca}
	cfg.AuthInfos["user"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["magekube-test"] = &clientcmdapi.Context{Cluster: "magekube-test", AuthInfo: "user"}
	cfg.CurrentContext = "magekube-test"
	return clientcmd.WriteToFile(*cfg, c.dir(name))
}

// AuditPolicy records every request once it is answered, metadata only
// (the kind clusters of the bench use it too).
const AuditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
`

// auditFlags are the API server's audit flags when o.Audit asks for them.
func (c *Cluster) auditFlags(o Options) ([]string, error) {
	if !o.Audit {
		return nil, nil
	}
	policy := c.dir("audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(AuditPolicy), 0o644); err != nil {
		return nil, err
	}
	c.AuditLog = c.dir("logs", "audit.log")
	return []string{"--audit-policy-file=" + policy, "--audit-log-path=" + c.AuditLog, "--audit-log-format=json", "--audit-log-maxsize=0"}, nil
}
