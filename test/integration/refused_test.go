//go:build integration

package integration

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/magekube/magekube/pkg/kube"
	"github.com/magekube/magekube/pkg/protocol"
	"github.com/magekube/magekube/test/framework"
)

// quota gives namespace ns a ResourceQuota of zero for resource.
func quota(t *testing.T, ns string, res corev1.ResourceName) {
	t.Helper()
	q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "zero"},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{res: resource.MustParse("0")}}}
	if _, err := env.Client.CoreV1().ResourceQuotas(ns).Create(t.Context(), q, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the quota's status", func() bool {
		got, err := env.Client.CoreV1().ResourceQuotas(ns).Get(t.Context(), "zero", metav1.GetOptions{})
		return err == nil && got.Status.Hard != nil
	})
}

// TestRefusedPodsReported: pods the API server refuses never exist; the
// run ends within seconds with the refusal's reason and the API's own
// message, not at the start timeout as "no pod yet".
func TestRefusedPodsReported(t *testing.T) {
	t.Run("a quota of zero pods", func(t *testing.T) {
		h := newHarness(t, emptyProject(t))
		quota(t, h.ns, corev1.ResourcePods)
		h.start()
		start := time.Now()
		h.submit("q", "")
		s := h.waitStatusWithin("q", 10*time.Second, phase(protocol.PhaseFailed, protocol.ReasonQuotaExceeded))
		if !strings.Contains(s.Message, "exceeded quota: zero") {
			t.Errorf("message %q lacks the API's", s.Message)
		}
		t.Logf("ended %s after the request: %s", time.Since(start).Round(time.Millisecond), s.Message)
		waitFor(t, "the Job to be deleted", func() bool { return h.jobs("q") == 0 })
	})
	t.Run("PodSecurity restricted", func(t *testing.T) {
		h := newHarness(t, emptyProject(t))
		patch := `{"metadata":{"labels":{"pod-security.kubernetes.io/enforce":"restricted"}}}`
		if _, err := env.Client.CoreV1().Namespaces().Patch(t.Context(), h.ns, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		h.start()
		h.submit("ps", "")
		s := h.waitStatusWithin("ps", 10*time.Second, phase(protocol.PhaseFailed, protocol.ReasonPodSecurityRejected))
		if !strings.Contains(s.Message, `violates PodSecurity "restricted`) {
			t.Errorf("message %q lacks the API's", s.Message)
		}
		if strings.Contains(s.Message, protocol.RunKeyLabel) || strings.Contains(s.Message, "magekube-runner-install") {
			t.Errorf("the runner's init container is named among the violations: %q", s.Message)
		}
	})
	t.Run("a quota of zero Jobs is not RBAC", func(t *testing.T) {
		h := newHarness(t, emptyProject(t))
		quota(t, h.ns, "count/jobs.batch")
		h.start()
		h.submit("qj", "")
		s := h.waitStatusWithin("qj", 10*time.Second, phase(protocol.PhaseFailed, protocol.ReasonQuotaExceeded))
		if !strings.Contains(s.Message, "exceeded quota") || strings.Contains(s.Message, "RBAC") {
			t.Errorf("message %q", s.Message)
		}
	})
}

// TestPreflightCoversAllowedNamespaces: an agent allowed another
// namespace where its Role is not bound stops at start, naming that
// namespace and the missing permissions, instead of failing its first
// run there.
func TestPreflightCoversAllowedNamespaces(t *testing.T) {
	ns, other := env.Namespace(t, "preflight"), env.Namespace(t, "preflight-other")
	waitSA(t, ns)
	var rules []rbacv1.PolicyRule
	for _, r := range kube.Required {
		rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{r.Group}, Resources: []string{r.Resource}, Verbs: []string{r.Verb}})
	}
	grant(t, ns, "agent", rules)
	pod, err := framework.CreateServerPod(t.Context(), env.Client, framework.PodOptions{Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := env.Client.CoreV1().ServiceAccounts(ns).CreateToken(t.Context(), "default", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := env.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData, InsecureSkipTLSVerify: cfg.Insecure}
	kc.AuthInfos["sa"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	kc.Contexts["sa"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "sa"}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, agentBin(t), "--kubeconfig", path, "--context", "sa", "--pod-name", pod.Name, "--pod-namespace", ns,
		"--dir", t.TempDir(), "run", "--listen", "127.0.0.1:0", "--allow-namespace", other).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "missing permission: create jobs (batch) in namespace "+other) {
		t.Errorf("agent run: %v\n%s", err, out)
	}
}
