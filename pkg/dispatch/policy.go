package dispatch

import (
	"fmt"
	"slices"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// Policy is what an operator allows a run's config beyond the server
// pod's own privilege (flags --allow-namespace, --allow-service-account,
// --allow-privileged, --allow-host-path).
type Policy struct {
	Namespaces      []string // besides the server pod's; "*" for any
	ServiceAccounts []string // besides the server pod's and "default"; "*" for any
	Privileged      bool
	HostPaths       bool
}

// Violations lists every way job asks for more privilege than the server
// pod has and the policy allows. Empty means the Job may be created.
func (p Policy) Violations(server *corev1.Pod, job *batchv1.Job) []string {
	var out []string
	spec := &job.Spec.Template.Spec
	if job.Namespace != server.Namespace && !allowed(p.Namespaces, job.Namespace) {
		out = append(out, fmt.Sprintf("namespace %q is not the server pod's (%q); allow it with --allow-namespace", job.Namespace, server.Namespace))
	}
	if sa := spec.ServiceAccountName; sa != "default" && sa != server.Spec.ServiceAccountName && !allowed(p.ServiceAccounts, sa) {
		out = append(out, fmt.Sprintf("service account %q is neither the server pod's nor \"default\"; allow it with --allow-service-account", sa))
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		out = append(out, "host namespaces (hostNetwork, hostPID, hostIPC) are never given to Jobs")
	}
	if !p.Privileged {
		serverPrivileged := false
		for _, c := range server.Spec.Containers {
			serverPrivileged = serverPrivileged || privileged(c)
		}
		for _, c := range append(append([]corev1.Container(nil), spec.InitContainers...), spec.Containers...) {
			if privileged(c) && !serverPrivileged {
				out = append(out, fmt.Sprintf("container %q asks for privileged or added capabilities the server pod does not have; allow it with --allow-privileged", c.Name))
			}
		}
	}
	if !p.HostPaths {
		known := map[string]bool{}
		for _, v := range server.Spec.Volumes {
			if v.HostPath != nil {
				known[v.HostPath.Path] = true
			}
		}
		for _, v := range spec.Volumes {
			if v.HostPath != nil && !known[v.HostPath.Path] {
				out = append(out, fmt.Sprintf("volume %q mounts host path %s, which the server pod does not; allow it with --allow-host-path", v.Name, v.HostPath.Path))
			}
		}
	}
	return out
}

func privileged(c corev1.Container) bool {
	sc := c.SecurityContext
	if sc == nil {
		return false
	}
	return sc.Privileged != nil && *sc.Privileged || sc.Capabilities != nil && len(sc.Capabilities.Add) > 0
}

func allowed(list []string, v string) bool {
	return slices.Contains(list, "*") || slices.Contains(list, v)
}
