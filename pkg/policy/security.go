package policy

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
)

// containers compares every Job container's effective security settings
// (container over pod) with the Mage container's. The Job inherits the
// Mage container's and the config's merge over them field by field
// (jobspec), so what is compared is what the config changed.
func (c *check) containers() {
	mage := effective(c.server.Spec.SecurityContext, c.mage.SecurityContext)
	var agentUID *int64
	if c.agent != nil {
		agentUID = effective(c.server.Spec.SecurityContext, c.agent.SecurityContext).runAsUser
	}
	for i, ct := range c.jobContainers() {
		job := effective(c.spec.SecurityContext, ct.SecurityContext)
		if !c.p.Privileged {
			c.privilege(ct.Name, mage, job)
		}
		// The runner's own init container (always the first) is built by
		// the agent to PodSecurity "restricted" and is not the config's to
		// change.
		if i == 0 && len(c.spec.InitContainers) > 0 {
			continue
		}
		if agentUID != nil && *agentUID != 0 && job.runAsUser != nil && *job.runAsUser == *agentUID && !sameID(mage.runAsUser, agentUID) {
			c.deny("container %q: runAsUser %d is the agent container's user, which owns the run directories' status files; a Job never runs as it", ct.Name, *agentUID)
		}
		if !c.p.SecurityOptions {
			c.options(ct.Name, mage, job)
		}
	}
	if !c.p.SecurityOptions {
		c.podIdentity()
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
		if !hasCap(mage.addCaps, cap) {
			extra = append(extra, string(cap))
		}
	}
	if len(extra) > 0 {
		c.deny("container %q: capabilities.add %s, which the Mage container does not add; allow it with --allow-privileged", name, strings.Join(extra, ", "))
	}
	if kept := keptCaps(mage.dropCaps, job.dropCaps); len(kept) > 0 {
		c.deny("container %q: capabilities.drop lacks %s, which the Mage container drops; allow it with --allow-privileged", name, strings.Join(kept, ", "))
	}
	if mage.noEscalation && !job.noEscalation {
		c.deny("container %q: allowPrivilegeEscalation is not false, as it is for the Mage container; allow it with --allow-privileged", name)
	}
	if job.unmasked && !mage.unmasked {
		c.deny("container %q: procMount Unmasked; allow it with --allow-privileged", name)
	}
}

func (c *check) options(name string, mage, job secContext) {
	const flag = "; allow it with --allow-security-options"
	if mage.nonRoot() && !job.nonRoot() {
		c.deny("container %q: may run as root (runAsUser 0, or neither runAsUser nor runAsNonRoot), where the Mage container may not"+flag, name)
	}
	if job.runAsGroup != nil && !sameID(job.runAsGroup, mage.runAsGroup) {
		c.deny("container %q: runAsGroup %d, a group the Mage container does not run as"+flag, name, *job.runAsGroup)
	}
	if mage.readOnlyRoot && !job.readOnlyRoot {
		c.deny("container %q: readOnlyRootFilesystem is not true, as it is for the Mage container"+flag, name)
	}
	if why := weaker(string(mage.seccomp), mage.seccompLocal, string(job.seccomp), job.seccompLocal); why != "" {
		c.deny("container %q: seccompProfile %s"+flag, name, why)
	}
	if why := weaker(string(mage.appArmor), mage.appArmorLocal, string(job.appArmor), job.appArmorLocal); why != "" {
		c.deny("container %q: appArmorProfile %s"+flag, name, why)
	}
	if job.seLinux != nil && !equality.Semantic.DeepEqual(job.seLinux, mage.seLinux) {
		c.deny("container %q: seLinuxOptions differ from the Mage container's"+flag, name)
	}
}

// podIdentity refuses group ids, volume ownership and sysctls the server
// pod does not have: a new group reaches files on the shared volume (the
// agent's among them) that the Mage container cannot.
func (c *check) podIdentity() {
	const flag = "; allow it with --allow-security-options"
	server, job := c.server.Spec.SecurityContext, c.spec.SecurityContext
	if server == nil {
		server = &corev1.PodSecurityContext{}
	}
	if job == nil {
		return
	}
	for _, g := range job.SupplementalGroups {
		if !slices.Contains(server.SupplementalGroups, g) {
			c.deny("pod security_context.supplementalGroups: %d, a group the server pod does not have"+flag, g)
		}
	}
	if job.FSGroup != nil && !sameID(job.FSGroup, server.FSGroup) {
		c.deny("pod security_context.fsGroup: %d, not the server pod's"+flag, *job.FSGroup)
	}
	if job.FSGroupChangePolicy != nil && !equality.Semantic.DeepEqual(job.FSGroupChangePolicy, server.FSGroupChangePolicy) {
		c.deny("pod security_context.fsGroupChangePolicy: %s, not the server pod's"+flag, *job.FSGroupChangePolicy)
	}
	for _, s := range job.Sysctls {
		if !slices.Contains(server.Sysctls, s) {
			c.deny("pod security_context.sysctls: %s=%s, which the server pod does not set"+flag, s.Name, s.Value)
		}
	}
}

// weaker says how a Job's seccomp or AppArmor profile (type, localhost
// profile) is weaker than the Mage container's, or "". Unset counts as
// Unconfined; RuntimeDefault is always as strict; a Localhost profile
// only where it is the Mage container's own, or the Mage container is
// unconfined.
func weaker(mageType, mageLocal, jobType, jobLocal string) string {
	confined := func(t string) bool { return t != "" && t != "Unconfined" }
	switch {
	case jobType == mageType && jobLocal == mageLocal:
		return ""
	case jobType == "RuntimeDefault":
		return ""
	case !confined(mageType) && confined(jobType):
		return ""
	case !confined(jobType):
		return fmt.Sprintf("%s, where the Mage container is confined (%s)", orUnset(jobType), mageType)
	}
	return fmt.Sprintf("Localhost %q, where the Mage container's is %s %s: a Job's may only be the same or RuntimeDefault", jobLocal, mageType, mageLocal)
}

func orUnset(t string) string {
	if t == "" {
		return "unset"
	}
	return t
}

// secContext is a container's security settings after the pod's defaults.
type secContext struct {
	privileged, noEscalation, unmasked, readOnlyRoot bool
	addCaps, dropCaps                                []corev1.Capability
	runAsUser, runAsGroup                            *int64
	runAsNonRoot                                     bool
	seccomp                                          corev1.SeccompProfileType
	appArmor                                         corev1.AppArmorProfileType
	seccompLocal, appArmorLocal                      string
	seLinux                                          *corev1.SELinuxOptions
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
		s.runAsUser, s.runAsGroup = pod.RunAsUser, pod.RunAsGroup
		s.runAsNonRoot = pod.RunAsNonRoot != nil && *pod.RunAsNonRoot
		s.seccomp, s.seccompLocal = seccomp(pod.SeccompProfile)
		s.appArmor, s.appArmorLocal = appArmor(pod.AppArmorProfile)
		s.seLinux = pod.SELinuxOptions
	}
	if ct == nil {
		return s
	}
	s.privileged = ct.Privileged != nil && *ct.Privileged
	s.noEscalation = ct.AllowPrivilegeEscalation != nil && !*ct.AllowPrivilegeEscalation
	s.unmasked = ct.ProcMount != nil && *ct.ProcMount == corev1.UnmaskedProcMount
	s.readOnlyRoot = ct.ReadOnlyRootFilesystem != nil && *ct.ReadOnlyRootFilesystem
	if ct.Capabilities != nil {
		s.addCaps, s.dropCaps = ct.Capabilities.Add, ct.Capabilities.Drop
	}
	if ct.RunAsUser != nil {
		s.runAsUser = ct.RunAsUser
	}
	if ct.RunAsGroup != nil {
		s.runAsGroup = ct.RunAsGroup
	}
	if ct.RunAsNonRoot != nil {
		s.runAsNonRoot = *ct.RunAsNonRoot
	}
	if ct.SeccompProfile != nil {
		s.seccomp, s.seccompLocal = seccomp(ct.SeccompProfile)
	}
	if ct.AppArmorProfile != nil {
		s.appArmor, s.appArmorLocal = appArmor(ct.AppArmorProfile)
	}
	if ct.SELinuxOptions != nil {
		s.seLinux = ct.SELinuxOptions
	}
	return s
}

func seccomp(p *corev1.SeccompProfile) (corev1.SeccompProfileType, string) {
	if p == nil {
		return "", ""
	}
	if p.LocalhostProfile != nil {
		return p.Type, *p.LocalhostProfile
	}
	return p.Type, ""
}

func appArmor(p *corev1.AppArmorProfile) (corev1.AppArmorProfileType, string) {
	if p == nil {
		return "", ""
	}
	if p.LocalhostProfile != nil {
		return p.Type, *p.LocalhostProfile
	}
	return p.Type, ""
}

// capName is a capability as the runtime reads it: upper case, without
// the CAP_ prefix.
func capName(c corev1.Capability) string {
	return strings.TrimPrefix(strings.ToUpper(string(c)), "CAP_")
}

func hasCap(list []corev1.Capability, c corev1.Capability) bool {
	return slices.ContainsFunc(list, func(l corev1.Capability) bool { return capName(l) == capName(c) })
}

// keptCaps are the capabilities the Mage container drops that the Job
// keeps (ALL stands for every one).
func keptCaps(mageDrops, jobDrops []corev1.Capability) []string {
	if hasCap(jobDrops, "ALL") {
		return nil
	}
	var kept []string
	for _, c := range mageDrops {
		if !hasCap(jobDrops, c) {
			kept = append(kept, capName(c))
		}
	}
	return kept
}

func sameID(a, b *int64) bool { return a != nil && b != nil && *a == *b || a == nil && b == nil }

// KeyReachable reports whether a Job's block may read the runner's
// memory, and with it the run's key, although the runner is non-dumpable:
// when the Mage container is privileged or adds CAP_SYS_PTRACE or
// CAP_SYS_ADMIN (a Job inherits them), or the operator lets configs add
// capabilities (--allow-privileged). The agent then trusts a sealed
// success only once the pod's main container has ended.
func (p Policy) KeyReachable(server *corev1.Pod, mage *corev1.Container) bool {
	s := effective(server.Spec.SecurityContext, mage.SecurityContext)
	return p.Privileged || s.privileged || hasCap(s.addCaps, "SYS_PTRACE") || hasCap(s.addCaps, "SYS_ADMIN") || hasCap(s.addCaps, "ALL")
}
