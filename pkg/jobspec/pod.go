package jobspec

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/magekube/magekube/pkg/execconfig"
)

// podSpec takes scheduling and identity from the config where it speaks
// and from the server pod where it is silent. Host namespaces, the
// server's init containers, nodeName and restartPolicy never carry over.
//
// The token split: when the Mage container holds no service-account token,
// neither does the Job (automountServiceAccountToken: false, whatever the
// pod or the service account say).
//
// The pod tolerates a node that stopped reporting for nodeLost at most
// (boundNodeLoss).
func podSpec(server *corev1.Pod, mage *corev1.Container, cfg *execconfig.Config, main, init corev1.Container, nodeLost time.Duration) (corev1.PodSpec, error) {
	src := server.Spec
	spec := corev1.PodSpec{
		RestartPolicy:                 corev1.RestartPolicyNever,
		InitContainers:                []corev1.Container{init},
		Containers:                    []corev1.Container{main},
		ServiceAccountName:            DefaultServiceAccount,
		AutomountServiceAccountToken:  src.AutomountServiceAccountToken,
		NodeSelector:                  copyMap(src.NodeSelector),
		Tolerations:                   append([]corev1.Toleration(nil), src.Tolerations...),
		Affinity:                      src.Affinity.DeepCopy(),
		SchedulerName:                 src.SchedulerName,
		ImagePullSecrets:              append([]corev1.LocalObjectReference(nil), src.ImagePullSecrets...),
		PriorityClassName:             src.PriorityClassName,
		SecurityContext:               src.SecurityContext.DeepCopy(),
		DNSPolicy:                     src.DNSPolicy,
		DNSConfig:                     src.DNSConfig.DeepCopy(),
		HostAliases:                   append([]corev1.HostAlias(nil), src.HostAliases...),
		RuntimeClassName:              src.RuntimeClassName,
		TerminationGracePeriodSeconds: src.TerminationGracePeriodSeconds,
	}
	if len(src.NodeSelector) == 0 {
		spec.NodeSelector = nil
	}
	if spec.DNSPolicy == corev1.DNSClusterFirstWithHostNet {
		spec.DNSPolicy = corev1.DNSClusterFirst // the Job does not share the host network
	}
	if err := applyPodSection(&spec, cfg.Pod); err != nil {
		return spec, err
	}
	setString(&spec.ServiceAccountName, cfg.ServiceAccountName)
	if nodeLost > 0 {
		spec.Tolerations = boundNodeLoss(spec.Tolerations, int64(nodeLost/time.Second))
	}
	if !HoldsToken(server, mage) {
		spec.AutomountServiceAccountToken = ptrTo(false)
	}
	return spec, nil
}

// applyPodSection applies the config's pod: section over the inherited
// spec; its security context merges field by field over the server pod's.
func applyPodSection(spec *corev1.PodSpec, p *execconfig.Pod) error {
	if p == nil {
		return nil
	}
	if p.InheritPlacement != nil && !*p.InheritPlacement {
		spec.NodeSelector, spec.Tolerations, spec.Affinity = nil, nil, nil
	}
	setString(&spec.ServiceAccountName, p.ServiceAccountName)
	if len(p.NodeSelector) > 0 {
		spec.NodeSelector = copyMap(p.NodeSelector)
	}
	if len(p.Tolerations) > 0 {
		spec.Tolerations = p.Tolerations
	}
	if p.Affinity != nil {
		spec.Affinity = p.Affinity.DeepCopy()
	}
	setString(&spec.SchedulerName, p.SchedulerName)
	setString(&spec.PriorityClassName, p.PriorityClassName)
	if len(p.ImagePullSecrets) > 0 {
		spec.ImagePullSecrets = nil
		for _, name := range p.ImagePullSecrets {
			spec.ImagePullSecrets = append(spec.ImagePullSecrets, corev1.LocalObjectReference{Name: name})
		}
	}
	sc, err := overSecurity(spec.SecurityContext, p.SecurityContext.DeepCopy())
	spec.SecurityContext = sc
	return err
}

// NodeLossTaints are the NoExecute taints the node controller puts on a
// node that stopped reporting (its kubelet, its network, the machine).
var NodeLossTaints = []string{corev1.TaintNodeUnreachable, corev1.TaintNodeNotReady}

// boundNodeLoss makes the pod tolerate the node-loss taints for seconds
// at most: a toleration of either for longer (or forever: the API
// server's admission gives every pod 300 s) is shortened, and one is
// added where none names the taint, ahead of any toleration of every
// taint, since the taint manager takes the first that matches. Only
// ever shorter: what the server pod tolerates for less stays as it is.
func boundNodeLoss(tols []corev1.Toleration, seconds int64) []corev1.Toleration {
	out := append([]corev1.Toleration(nil), tols...)
	var add []corev1.Toleration
	for _, key := range NodeLossTaints {
		named := false
		for i := range out {
			t := &out[i]
			if t.Key != key || t.Effect != "" && t.Effect != corev1.TaintEffectNoExecute {
				continue
			}
			named = true
			if t.TolerationSeconds == nil || *t.TolerationSeconds > seconds {
				t.Effect = corev1.TaintEffectNoExecute
				t.TolerationSeconds = ptrTo(seconds)
			}
		}
		if !named {
			add = append(add, corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptrTo(seconds)})
		}
	}
	return append(add, out...)
}

func cfgVolumes(cfg *execconfig.Config) []corev1.Volume {
	if cfg.Pod == nil {
		return nil
	}
	return cfg.Pod.Volumes
}

// keepMountedVolumes gives the pod the volumes its containers mount and no
// others: the config's volumes win over the server's of the same name, and
// the runner's emptyDir is added. A mount of an undefined volume is an error.
func keepMountedVolumes(spec *corev1.PodSpec, server, config []corev1.Volume) error {
	byName := map[string]corev1.Volume{}
	for _, v := range server {
		byName[v.Name] = v
	}
	for _, v := range config {
		byName[v.Name] = v
	}
	byName[RunnerVolumeName] = corev1.Volume{Name: RunnerVolumeName, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}

	seen := map[string]bool{}
	for _, c := range append(append([]corev1.Container(nil), spec.InitContainers...), spec.Containers...) {
		for _, m := range c.VolumeMounts {
			if _, ok := byName[m.Name]; !ok {
				return fmt.Errorf("volume mount %q at %s: no volume of that name in pod.volumes or the server pod", m.Name, m.MountPath)
			}
			seen[m.Name] = true
		}
	}
	// Keep the server's order first, then the config's, then the runner's.
	spec.Volumes = nil
	for _, list := range [][]corev1.Volume{server, config} {
		for _, v := range list {
			if seen[v.Name] {
				spec.Volumes = append(spec.Volumes, byName[v.Name])
				seen[v.Name] = false
			}
		}
	}
	if seen[RunnerVolumeName] {
		spec.Volumes = append(spec.Volumes, byName[RunnerVolumeName])
	}
	return nil
}
