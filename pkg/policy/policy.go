package policy

import (
	"fmt"
	"slices"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/magekube/magekube/pkg/jobspec"
)

// Policy is what an operator allows a run's config beyond what the Mage
// container itself has. The zero Policy allows nothing more. The token
// split (no Job gets the agent's credentials) holds whatever it says.
type Policy struct {
	Namespaces      []string // --allow-namespace: besides the server pod's; "*" for any
	ServiceAccounts []string // --allow-service-account: besides "default"; "*" for any
	Privileged      bool     // --allow-privileged: privileged, added capabilities, privilege escalation
	HostPaths       bool     // --allow-host-path: hostPath volumes the Mage container does not mount
	VolumeTypes     []string // --allow-volume-type: e.g. "secret", "persistentVolumeClaim", "csi"; "*" for any
	Secrets         []string // --allow-secret: Secrets the Mage container does not reference; "*" for any
	SecurityOptions bool     // --allow-security-options: root, unconfined seccomp/AppArmor, SELinux options
	ControlPlane    bool     // --allow-control-plane: tolerating control-plane taints, or every taint
}

// Violations lists every way job asks for more than the Mage container of
// server has and p allows, each naming the field and the flag that would
// allow it. Empty means the Job may be created.
func (p Policy) Violations(server *corev1.Pod, s jobspec.Settings, job *batchv1.Job) []string {
	mage, err := jobspec.MageContainer(server, s)
	if err != nil {
		return []string{err.Error()}
	}
	c := check{p: p, server: server, mage: mage, agent: agentContainer(server, s), job: job, spec: &job.Spec.Template.Spec}
	c.namespace()
	c.identity()
	c.hostNamespaces()
	c.volumes()
	c.secretRefs()
	c.containers()
	c.tolerations()
	return c.out
}

// check gathers the violations of one Job.
type check struct {
	p      Policy
	server *corev1.Pod
	mage   *corev1.Container
	agent  *corev1.Container
	job    *batchv1.Job
	spec   *corev1.PodSpec
	out    []string
}

func (c *check) deny(format string, args ...any) {
	c.out = append(c.out, fmt.Sprintf(format, args...))
}

func (c *check) namespace() {
	if ns := c.job.Namespace; ns != c.server.Namespace && !allowed(c.p.Namespaces, ns) {
		c.deny("namespace %q is not the server pod's (%q); allow it with --allow-namespace", ns, c.server.Namespace)
	}
}

// identity keeps the token split: the server pod's service account is the
// agent's when the Mage container holds no token, so a Job may use it only
// when the Mage container has those credentials already.
func (c *check) identity() {
	holds := jobspec.HoldsToken(c.server, c.mage)
	sa := c.spec.ServiceAccountName
	switch {
	case sa == "" || sa == jobspec.DefaultServiceAccount:
	case sa == c.server.Spec.ServiceAccountName && holds:
	case sa == c.server.Spec.ServiceAccountName:
		c.deny("service_account_name: %q is the server pod's service account, whose token only the agent container holds; a Job never gets the agent's identity", sa)
	case !allowed(c.p.ServiceAccounts, sa):
		c.deny("service_account_name: %q is neither \"default\" nor the Mage container's; allow it with --allow-service-account", sa)
	}
	if !holds && (c.spec.AutomountServiceAccountToken == nil || *c.spec.AutomountServiceAccountToken) {
		c.deny("automountServiceAccountToken: the Mage container holds no service-account token, so the Job may not either")
	}
}

func (c *check) hostNamespaces() {
	if c.spec.HostNetwork || c.spec.HostPID || c.spec.HostIPC || (c.spec.HostUsers != nil && *c.spec.HostUsers) {
		c.deny("host namespaces (hostNetwork, hostPID, hostIPC, hostUsers) are never given to Jobs")
	}
}

// tolerations refuses scheduling onto the control plane, which the server
// pod is not allowed either.
func (c *check) tolerations() {
	if c.p.ControlPlane {
		return
	}
	for _, t := range c.spec.Tolerations {
		if !controlPlane(t) || slices.ContainsFunc(c.server.Spec.Tolerations, func(s corev1.Toleration) bool { return s.MatchToleration(&t) }) {
			continue
		}
		what := fmt.Sprintf("the control-plane taint %q", t.Key)
		if t.Key == "" {
			what = "every taint"
		}
		c.deny("tolerations: a toleration of %s, which the server pod lacks; allow it with --allow-control-plane", what)
	}
}

var controlPlaneTaints = []string{"node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master"}

func controlPlane(t corev1.Toleration) bool {
	return t.Key == "" && t.Operator == corev1.TolerationOpExists || slices.Contains(controlPlaneTaints, t.Key)
}

func agentContainer(pod *corev1.Pod, s jobspec.Settings) *corev1.Container {
	for i := range pod.Spec.Containers {
		if c := &pod.Spec.Containers[i]; c.Name == s.AgentContainer && s.AgentContainer != "" {
			return c
		}
	}
	return nil
}

func allowed(list []string, v string) bool {
	return slices.Contains(list, "*") || slices.Contains(list, v)
}
