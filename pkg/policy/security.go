package policy

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/magekube/magekube/pkg/jobspec"
)

// containers compares every Job container's effective security settings
// (container over pod) with the Mage container's.
func (c *check) containers() {
	mage := effective(c.server.Spec.SecurityContext, c.mage.SecurityContext)
	for _, ct := range c.jobContainers() {
		job := effective(c.spec.SecurityContext, ct.SecurityContext)
		if !c.p.Privileged {
			c.privilege(ct.Name, mage, job)
		}
		// The runner's own init container is built by the agent with every
		// capability dropped and is not the config's to change.
		if !c.p.SecurityOptions && ct.Name != jobspec.RunnerInitName {
			c.options(ct.Name, mage, job)
		}
	}
}

func (c *check) privilege(name string, mage, job secContext) {
	if mage.privileged {
		return
	}
	if job.privileged {
		c.deny("container %q: privileged, which the Mage container is not; allow it with --allow-privileged", name)
	}
	var extra []string
	for _, cap := range job.addCaps {
		if !slices.Contains(mage.addCaps, cap) {
			extra = append(extra, string(cap))
		}
	}
	if len(extra) > 0 {
		c.deny("container %q: capabilities.add %s, which the Mage container does not add; allow it with --allow-privileged", name, strings.Join(extra, ", "))
	}
	if mage.noEscalation && !job.noEscalation {
		c.deny("container %q: allowPrivilegeEscalation is not false, as it is for the Mage container; allow it with --allow-privileged", name)
	}
	if job.unmasked && !mage.unmasked {
		c.deny("container %q: procMount Unmasked; allow it with --allow-privileged", name)
	}
}

func (c *check) options(name string, mage, job secContext) {
	if mage.nonRoot() && !job.nonRoot() {
		c.deny("container %q: may run as root (runAsUser 0, or neither runAsUser nor runAsNonRoot), where the Mage container may not; allow it with --allow-security-options", name)
	}
	if job.seccomp == corev1.SeccompProfileTypeUnconfined && mage.seccomp != corev1.SeccompProfileTypeUnconfined {
		c.deny("container %q: seccompProfile Unconfined, where the Mage container is confined; allow it with --allow-security-options", name)
	}
	if job.appArmor == corev1.AppArmorProfileTypeUnconfined && mage.appArmor != corev1.AppArmorProfileTypeUnconfined {
		c.deny("container %q: appArmorProfile Unconfined, where the Mage container is confined; allow it with --allow-security-options", name)
	}
	if job.seLinux != nil && !equality.Semantic.DeepEqual(job.seLinux, mage.seLinux) {
		c.deny("container %q: seLinuxOptions differ from the Mage container's; allow it with --allow-security-options", name)
	}
}

// secContext is a container's security settings after the pod's defaults.
type secContext struct {
	privileged, noEscalation, unmasked bool
	addCaps                            []corev1.Capability
	runAsUser                          *int64
	runAsNonRoot                       bool
	seccomp                            corev1.SeccompProfileType
	appArmor                           corev1.AppArmorProfileType
	seLinux                            *corev1.SELinuxOptions
}

func (s secContext) nonRoot() bool {
	if s.runAsUser != nil {
		return *s.runAsUser != 0
	}
	return s.runAsNonRoot
}

func effective(pod *corev1.PodSecurityContext, ct *corev1.SecurityContext) secContext {
	var s secContext
	if pod != nil {
		s.runAsUser = pod.RunAsUser
		s.runAsNonRoot = pod.RunAsNonRoot != nil && *pod.RunAsNonRoot
		if pod.SeccompProfile != nil {
			s.seccomp = pod.SeccompProfile.Type
		}
		if pod.AppArmorProfile != nil {
			s.appArmor = pod.AppArmorProfile.Type
		}
		s.seLinux = pod.SELinuxOptions
	}
	if ct == nil {
		return s
	}
	s.privileged = ct.Privileged != nil && *ct.Privileged
	s.noEscalation = ct.AllowPrivilegeEscalation != nil && !*ct.AllowPrivilegeEscalation
	s.unmasked = ct.ProcMount != nil && *ct.ProcMount == corev1.UnmaskedProcMount
	if ct.Capabilities != nil {
		s.addCaps = ct.Capabilities.Add
	}
	if ct.RunAsUser != nil {
		s.runAsUser = ct.RunAsUser
	}
	if ct.RunAsNonRoot != nil {
		s.runAsNonRoot = *ct.RunAsNonRoot
	}
	if ct.SeccompProfile != nil {
		s.seccomp = ct.SeccompProfile.Type
	}
	if ct.AppArmorProfile != nil {
		s.appArmor = ct.AppArmorProfile.Type
	}
	if ct.SELinuxOptions != nil {
		s.seLinux = ct.SELinuxOptions
	}
	return s
}
