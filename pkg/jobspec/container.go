package jobspec

import (
	"fmt"
	"path"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/magekube/magekube/pkg/execconfig"
	"github.com/magekube/magekube/pkg/protocol"
)

// Environment the runner reads inside the Job.
const (
	EnvRunID   = "MAGEKUBE_RUN_ID"
	EnvPodName = "MAGEKUBE_POD_NAME"
	// EnvRunKey is the Job's UID, the key the runner seals result.json
	// with (protocol.SealResult); the block's own command does not see it.
	EnvRunKey      = "MAGEKUBE_RUN_KEY"
	EnvTraceParent = "TRACEPARENT"
)

// mainContainer is the Mage container of the server pod, turned into the
// Job's container: env, envFrom, volume mounts, image, workingDir and
// securityContext carry over; ports, probes, lifecycle hooks and resources
// do not. Config wins wherever it speaks.
func mainContainer(server *corev1.Container, cfg *execconfig.Config, req *protocol.Request, s Settings) (corev1.Container, error) {
	c := corev1.Container{
		Name:            DefaultContainerName,
		Image:           server.Image,
		ImagePullPolicy: corev1.PullIfNotPresent,
		WorkingDir:      server.WorkingDir,
		Env:             append([]corev1.EnvVar(nil), server.Env...),
		EnvFrom:         append([]corev1.EnvFromSource(nil), server.EnvFrom...),
		VolumeMounts:    append([]corev1.VolumeMount(nil), server.VolumeMounts...),
		SecurityContext: server.SecurityContext.DeepCopy(),
	}
	block := req.Command
	if cc := cfg.ContainerConfig; cc != nil && len(cc.Command) > 0 {
		block = cc.Command // as in Mage: container_config's command replaces the block's
	}
	for _, k := range cfg.ContainerOverlays() {
		if err := overlay(&c, k); err != nil {
			return c, err
		}
		if block == nil && len(k.Command) > 0 {
			block = append(append([]string(nil), k.Command...), k.Args...)
		}
	}
	if block == nil {
		block = MageCommand(req)
	}
	if cc := cfg.ContainerConfig; cc != nil && len(cc.Args) > 0 {
		block = append(append([]string(nil), block...), cc.Args...) // Mage passes them as the container's args
	}
	c.Resources = corev1.ResourceRequirements{Requests: cfg.Requests(), Limits: cfg.Limits()}

	env := []corev1.EnvVar{
		{Name: EnvRunID, Value: req.ID},
		{Name: EnvPodName, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: EnvRunKey, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['" + protocol.RunKeyLabel + "']"}}},
	}
	if s.TraceParent != "" {
		env = append(env, corev1.EnvVar{Name: EnvTraceParent, Value: s.TraceParent})
	}
	c.Env = mergeEnv(c.Env, env)

	runner := path.Join(RunnerMountPath, path.Base(s.RunnerPath))
	for _, m := range c.VolumeMounts {
		if m.MountPath == RunnerMountPath {
			return c, fmt.Errorf("volume mount %q at %s: that path is reserved for the magekube runner", m.Name, m.MountPath)
		}
	}
	c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: RunnerVolumeName, MountPath: RunnerMountPath, ReadOnly: true})
	c.Command = append([]string{runner, "exec", "--run-dir", s.RunDir(req.ID), "--"}, block...)
	c.Args = nil
	return c, nil
}

// overlay applies the config's container fields over c; its security
// context merges field by field over the inherited one.
func overlay(c *corev1.Container, k corev1.Container) error {
	setString(&c.Name, k.Name)
	setString(&c.Image, k.Image)
	setString((*string)(&c.ImagePullPolicy), string(k.ImagePullPolicy))
	setString(&c.WorkingDir, k.WorkingDir)
	c.Env = mergeEnv(c.Env, k.Env)
	c.EnvFrom = mergeEnvFrom(c.EnvFrom, k.EnvFrom)
	c.VolumeMounts = mergeMounts(c.VolumeMounts, k.VolumeMounts)
	sc, err := overSecurity(c.SecurityContext, k.SecurityContext.DeepCopy())
	c.SecurityContext = sc
	return err
}

// runnerInit copies the runner into the shared emptyDir before the main
// container starts, so any Mage image works unchanged.
func runnerInit(s Settings, agent *corev1.Container) corev1.Container {
	policy := corev1.PullIfNotPresent
	if agent != nil && agent.Image == s.RunnerImage && agent.ImagePullPolicy != "" {
		policy = agent.ImagePullPolicy
	}
	return corev1.Container{
		Name:            RunnerInitName,
		Image:           s.RunnerImage,
		ImagePullPolicy: policy,
		Command:         []string{s.RunnerPath, "install", path.Join(RunnerMountPath, path.Base(s.RunnerPath))},
		VolumeMounts:    []corev1.VolumeMount{{Name: RunnerVolumeName, MountPath: RunnerMountPath}},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
		},
		// PodSecurity "restricted", whatever the pod's own settings: the
		// runner image's non-root user, RuntimeDefault seccomp, nothing more.
		SecurityContext: &corev1.SecurityContext{
			RunAsNonRoot:             ptrTo(true),
			RunAsUser:                ptrTo(RunnerUser),
			AllowPrivilegeEscalation: ptrTo(false),
			ReadOnlyRootFilesystem:   ptrTo(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
}

// mergeEnv overlays env by name: a name in over replaces the base entry in
// place (every entry of that name); new names are appended in their
// order. Linear in both lists.
func mergeEnv(base, over []corev1.EnvVar) []corev1.EnvVar {
	out := append(make([]corev1.EnvVar, 0, len(base)+len(over)), base...)
	at := make(map[string][]int, len(out))
	for i, e := range out {
		at[e.Name] = append(at[e.Name], i)
	}
	for _, e := range over {
		idx, ok := at[e.Name]
		if !ok {
			at[e.Name] = []int{len(out)}
			out = append(out, e)
			continue
		}
		for _, i := range idx {
			out[i] = e
		}
	}
	return out
}

func mergeEnvFrom(base, over []corev1.EnvFromSource) []corev1.EnvFromSource {
	out := append([]corev1.EnvFromSource(nil), base...)
next:
	for _, e := range over {
		for _, have := range out {
			if equalEnvFrom(have, e) {
				continue next
			}
		}
		out = append(out, e)
	}
	return out
}

func equalEnvFrom(a, b corev1.EnvFromSource) bool {
	return a.Prefix == b.Prefix &&
		(a.ConfigMapRef == nil) == (b.ConfigMapRef == nil) && (a.ConfigMapRef == nil || a.ConfigMapRef.Name == b.ConfigMapRef.Name) &&
		(a.SecretRef == nil) == (b.SecretRef == nil) && (a.SecretRef == nil || a.SecretRef.Name == b.SecretRef.Name)
}

// mergeMounts overlays volume mounts so that no two share a path: a mount
// in over replaces the base mount at the same mountPath, and the base
// mount of the same volume and subPath (the config moved it).
func mergeMounts(base, over []corev1.VolumeMount) []corev1.VolumeMount {
	out := append([]corev1.VolumeMount(nil), base...)
	for _, m := range over {
		kept := out[:0]
		for _, have := range out {
			samePath := have.MountPath == m.MountPath
			sameSource := have.Name == m.Name && have.SubPath == m.SubPath
			if !samePath && !sameSource {
				kept = append(kept, have)
			}
		}
		out = append(kept, m)
	}
	return out
}

func setString(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}
