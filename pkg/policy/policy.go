package policy

import (
	"fmt"
	"slices"
	"strings"

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
	SecurityOptions bool     // --allow-security-options: root, weaker seccomp/AppArmor, a writable root, SELinux options, new group ids, fsGroup, sysctls
	ControlPlane    bool     // --allow-control-plane: tolerating control-plane taints, or every taint
	Tolerations     []string // --allow-toleration: taint keys a Job may tolerate that the server pod does not; "*" for any
	PriorityClasses []string // --allow-priority-class: priority classes besides the server pod's; "*" for any
	PullSecrets     []string // --allow-pull-secret: image pull secrets besides the server pod's; "*" for any
	SubPathExpr     bool     // --allow-subpath-expr: mounting the Mage container's volumes with a subPathExpr it does not use
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
	c.runKey()
	c.tolerations()
	c.scheduling()
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

// tolerations refuses tolerating taints the server pod does not tolerate:
// a taint keeps other tenants' nodes (a team's dedicated pool, etcd, the
// control plane, a cordoned node) to themselves.
func (c *check) tolerations() {
	for _, t := range c.spec.Tolerations {
		if slices.ContainsFunc(c.server.Spec.Tolerations, func(s corev1.Toleration) bool { return covers(s, t) }) ||
			c.p.ControlPlane && controlPlane(t) || allowed(c.p.Tolerations, t.Key) || boundedNodeLoss(t) {
			continue
		}
		if t.Key == "" {
			c.deny("tolerations: a toleration of every taint, which the server pod lacks; allow it with --allow-toleration='*'")
			continue
		}
		c.deny("tolerations: a toleration of the taint %q, which the server pod lacks; allow it with --allow-toleration=%s", t.Key, t.Key)
	}
}

// covers reports whether the server's toleration s tolerates every taint
// the Job's toleration t does.
func covers(s, t corev1.Toleration) bool {
	if s.Effect != "" && s.Effect != t.Effect {
		return false
	}
	if s.Key == "" {
		return s.Operator == corev1.TolerationOpExists
	}
	if s.Key != t.Key {
		return false
	}
	return s.Operator == corev1.TolerationOpExists || t.Operator != corev1.TolerationOpExists && s.Value == t.Value
}

// defaultTolerationSeconds is how long the API server's admission
// (DefaultTolerationSeconds) lets every pod tolerate a lost node.
const defaultTolerationSeconds = 300

// boundedNodeLoss reports whether t tolerates only a lost node, for no
// longer than every pod may: the agent bounds the Job's (jobspec).
func boundedNodeLoss(t corev1.Toleration) bool {
	return slices.Contains(jobspec.NodeLossTaints, t.Key) && t.Effect == corev1.TaintEffectNoExecute &&
		t.TolerationSeconds != nil && *t.TolerationSeconds <= defaultTolerationSeconds
}

var controlPlaneTaints = []string{"node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master"}

func controlPlane(t corev1.Toleration) bool {
	return t.Key == "" && t.Operator == corev1.TolerationOpExists || slices.Contains(controlPlaneTaints, t.Key)
}

// scheduling refuses a priority class (which may preempt other tenants'
// pods) and image pull secrets (registry credentials) the server pod
// does not have.
func (c *check) scheduling() {
	if pc := c.spec.PriorityClassName; pc != "" && pc != c.server.Spec.PriorityClassName && !allowed(c.p.PriorityClasses, pc) {
		c.deny("pod.priority_class_name: %q is not the server pod's; allow it with --allow-priority-class=%s", pc, pc)
	}
	for _, ps := range c.spec.ImagePullSecrets {
		if !slices.Contains(c.server.Spec.ImagePullSecrets, ps) && !allowed(c.p.PullSecrets, ps.Name) {
			c.deny("pod.image_pull_secrets: %q is not the server pod's; allow it with --allow-pull-secret=%s", ps.Name, ps.Name)
		}
	}
}

// runKey refuses handing a container the run's key (its Job's UID, in the
// pod's controller-uid labels): with it a block could seal a result of
// its own. Only the runner's own variable in the main container holds it.
func (c *check) runKey() {
	for i, ct := range c.spec.Containers {
		for _, e := range ct.Env {
			if i == 0 && e.Name == jobspec.EnvRunKey {
				continue // set by the agent, read by the runner, hidden from the block
			}
			if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && exposesKey(e.ValueFrom.FieldRef.FieldPath) {
				c.deny("container %q env %s: %s holds the run's key (its Job's UID); a Job's containers never get it", ct.Name, e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
		}
	}
	for _, v := range c.spec.Volumes {
		var items []corev1.DownwardAPIVolumeFile
		if v.DownwardAPI != nil {
			items = v.DownwardAPI.Items
		}
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				if s.DownwardAPI != nil {
					items = append(items, s.DownwardAPI.Items...)
				}
			}
		}
		for _, it := range items {
			if it.FieldRef != nil && exposesKey(it.FieldRef.FieldPath) {
				c.deny("volume %q: downward API %s holds the run's key (its Job's UID, a pod label); a Job's containers never get it", v.Name, it.FieldRef.FieldPath)
			}
		}
	}
}

// exposesKey reports whether a downward API field path reads the pod's
// controller-uid label (both names Kubernetes sets), or every label.
func exposesKey(path string) bool {
	return path == "metadata.labels" || strings.Contains(path, "controller-uid")
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
