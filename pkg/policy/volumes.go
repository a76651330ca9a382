package policy

import (
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/magekube/magekube/pkg/jobspec"
)

// volumes lets a Job have the volumes the Mage container mounts (the same
// source under any name), the runner's emptyDir, and new volumes of kinds
// that grant nothing (emptyDir, configMap, downwardAPI). Anything else is
// a gain: a hostPath, a Secret, a claim or a network volume the Mage
// container does not have, and never a service-account token or a volume
// only the agent mounts.
func (c *check) volumes() {
	mageMounts := mountModes(c.mage)
	agentMounts := mountModes(c.agent)
	inheritedAs := map[string]string{} // job volume → the server volume it equals
	for _, v := range c.spec.Volumes {
		if v.Name == jobspec.RunnerVolumeName && v.EmptyDir != nil {
			continue
		}
		if same, ok := c.mageVolume(v, mageMounts); ok {
			inheritedAs[v.Name] = same
			continue
		}
		if harmless(volumeKind(v.VolumeSource)) {
			continue // an emptyDir, configMap or downwardAPI grants nothing, whoever else mounts one
		}
		if sv, ok := c.serverVolume(v); ok {
			if _, agents := agentMounts[sv]; agents || jobspec.TokenVolume(v) {
				c.deny("volume %q: mounted by the agent container only; a Job never gets the agent's volumes", v.Name)
			} else {
				c.deny("volume %q: the Mage container %q does not mount it; a Job inherits only the Mage container's volumes", v.Name, c.mage.Name)
			}
			continue
		}
		c.newVolume(v)
	}
	for _, ct := range c.jobContainers() {
		for _, m := range ct.VolumeMounts {
			if same, ok := inheritedAs[m.Name]; ok {
				c.mount(ct.Name, m, same)
			}
		}
	}
}

// mount checks a Job mount of the Mage container's volume same against
// the Mage container's mounts of it, by (volume, subPath prefix,
// read-only): the Job may mount what the Mage container mounts, or a part
// of it, read-only where the Mage container's is.
func (c *check) mount(container string, m corev1.VolumeMount, same string) {
	var covering []corev1.VolumeMount
	for _, mm := range c.mage.VolumeMounts {
		if mm.Name != same {
			continue
		}
		switch {
		case mm.SubPathExpr != "":
			if m.SubPathExpr == mm.SubPathExpr && m.SubPath == "" {
				covering = append(covering, mm)
			}
		case m.SubPathExpr != "":
			if mm.SubPath == "" && c.p.SubPathExpr {
				covering = append(covering, mm)
			}
		case within(m.SubPath, mm.SubPath):
			covering = append(covering, mm)
		}
	}
	switch {
	case len(covering) == 0 && m.SubPathExpr != "":
		c.deny("container %q volumeMounts %q: subPathExpr %q of volume %q, which the Mage container does not mount that way; allow it with --allow-subpath-expr", container, m.MountPath, m.SubPathExpr, same)
	case len(covering) == 0:
		c.deny("container %q volumeMounts %q: subPath %q of volume %q is wider than what the Mage container mounts of it (%s)", container, m.MountPath, m.SubPath, same, subPaths(c.mage, same))
	case !m.ReadOnly && !slices.ContainsFunc(covering, func(mm corev1.VolumeMount) bool { return !mm.ReadOnly }):
		c.deny("container %q volumeMounts %q: the Mage container mounts %q read-only; the Job may not mount it read-write", container, m.MountPath, same)
	}
}

// within reports whether subPath sub lies in subPath dir ("" is the
// whole volume).
func within(sub, dir string) bool {
	sub, dir = path.Clean("/"+sub), path.Clean("/"+dir)
	return dir == "/" || sub == dir || strings.HasPrefix(sub, dir+"/")
}

func subPaths(mage *corev1.Container, volume string) string {
	var out []string
	for _, m := range mage.VolumeMounts {
		if m.Name == volume {
			out = append(out, fmt.Sprintf("subPath %q", m.SubPath+m.SubPathExpr))
		}
	}
	return strings.Join(out, ", ")
}

// mageVolume finds the server volume the Mage container mounts whose
// source equals v's (by v's own name first).
func (c *check) mageVolume(v corev1.Volume, mageMounts map[string]bool) (string, bool) {
	names := slices.Sorted(maps.Keys(mageMounts))
	if _, ok := mageMounts[v.Name]; ok {
		names = append([]string{v.Name}, names...)
	}
	for _, name := range names {
		for _, sv := range c.server.Spec.Volumes {
			if sv.Name == name && equality.Semantic.DeepEqual(sv.VolumeSource, v.VolumeSource) {
				return name, true
			}
		}
	}
	return "", false
}

// serverVolume reports whether v is a server volume as the Job inherits
// it: its name and its definition. A config volume that only shares the
// name, or only the source, is the config's own and judged as new by its
// kind (a token never, a Secret only as the Mage container's, …).
func (c *check) serverVolume(v corev1.Volume) (string, bool) {
	for _, sv := range c.server.Spec.Volumes {
		if sv.Name == v.Name && equality.Semantic.DeepEqual(sv.VolumeSource, v.VolumeSource) {
			return sv.Name, true
		}
	}
	return "", false
}

// newVolume judges a volume the config adds.
func (c *check) newVolume(v corev1.Volume) {
	kind := volumeKind(v.VolumeSource)
	switch {
	case jobspec.TokenVolume(v):
		c.deny("volume %q: a service-account token; Jobs never get Kubernetes credentials", v.Name)
	case harmless(kind):
	case kind == "projected":
		for _, s := range v.Projected.Sources {
			if s.Secret != nil {
				c.secret("volume "+quote(v.Name), s.Secret.Name)
			}
			if s.PodCertificate != nil {
				c.deny("volume %q: a pod certificate, a credential bound to the pod; Jobs never get Kubernetes credentials", v.Name)
			}
		}
	case kind == "secret":
		c.secret("volume "+quote(v.Name), v.Secret.SecretName)
	case kind == "hostPath":
		if !c.p.HostPaths {
			c.deny("volume %q: host path %s, which the Mage container does not mount; allow it with --allow-host-path", v.Name, v.HostPath.Path)
		}
	case !allowed(c.p.VolumeTypes, kind):
		c.deny("volume %q: a %s volume the Mage container does not mount; allow the type with --allow-volume-type=%s", v.Name, kind, kind)
	}
}

// secretRefs refuses env and envFrom references to Secrets the Mage
// container does not itself reference.
func (c *check) secretRefs() {
	for _, ct := range c.jobContainers() {
		for _, e := range ct.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				c.secret("container "+quote(ct.Name)+" env "+e.Name, e.ValueFrom.SecretKeyRef.Name)
			}
		}
		for _, e := range ct.EnvFrom {
			if e.SecretRef != nil {
				c.secret("container "+quote(ct.Name)+" envFrom", e.SecretRef.Name)
			}
		}
	}
}

func (c *check) secret(where, name string) {
	if allowed(c.p.Secrets, name) || allowed(c.p.VolumeTypes, "secret") || slices.Contains(c.mageSecrets(), name) {
		return
	}
	c.deny("%s: Secret %q is not referenced by the Mage container; allow it with --allow-secret=%s", where, name, name)
}

// mageSecrets are the Secrets the Mage container can read: by env,
// envFrom and the volumes it mounts.
func (c *check) mageSecrets() []string {
	var out []string
	for _, e := range c.mage.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			out = append(out, e.ValueFrom.SecretKeyRef.Name)
		}
	}
	for _, e := range c.mage.EnvFrom {
		if e.SecretRef != nil {
			out = append(out, e.SecretRef.Name)
		}
	}
	mounted := mountModes(c.mage)
	for _, v := range c.server.Spec.Volumes {
		if _, ok := mounted[v.Name]; !ok {
			continue
		}
		if v.Secret != nil {
			out = append(out, v.Secret.SecretName)
		}
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				if s.Secret != nil {
					out = append(out, s.Secret.Name)
				}
			}
		}
	}
	return out
}

// mountModes maps each volume c mounts to whether every mount of it is
// read-only.
func mountModes(c *corev1.Container) map[string]bool {
	out := map[string]bool{}
	if c == nil {
		return out
	}
	for _, m := range c.VolumeMounts {
		ro, seen := out[m.Name]
		out[m.Name] = m.ReadOnly && (ro || !seen)
	}
	return out
}

// volumeKind is the JSON name of the source's one set field: "nfs", "csi"…
func volumeKind(s corev1.VolumeSource) string {
	data, err := json.Marshal(s)
	if err != nil {
		return "unknown"
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(data, &fields) != nil || len(fields) != 1 {
		return "unknown"
	}
	for k := range fields {
		return k
	}
	return "unknown"
}

func (c *check) jobContainers() []corev1.Container {
	return append(append([]corev1.Container(nil), c.spec.InitContainers...), c.spec.Containers...)
}

func quote(s string) string { return `"` + s + `"` }

// harmless kinds of volume grant a Job nothing: its own scratch space, or
// data any pod in the namespace may mount.
func harmless(kind string) bool {
	return kind == "emptyDir" || kind == "configMap" || kind == "downwardAPI"
}
