package execconfig

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// validator collects problems of one decoded config with their paths.
type validator struct {
	source, root string
	errs         []error
}

func (v *validator) fail(path, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Source: v.source, Path: path, Problem: fmt.Sprintf(format, args...)})
}

func (v *validator) path(parts ...string) string {
	p := v.root
	for _, s := range parts {
		p = child(p, s)
	}
	return p
}

// Validate checks values the type system cannot: names, enums, labels,
// ranges. It reports every problem at once.
func (c *Config) Validate() error { return c.validate("", "") }

func (c *Config) validate(source, root string) error {
	v := &validator{source: source, root: root}
	v.dnsLabel(v.path("namespace"), c.Namespace)
	v.subdomain(v.path("service_account_name"), c.ServiceAccountName)
	if m := c.Metadata; m != nil {
		v.dnsLabel(v.path("metadata", "namespace"), m.Namespace)
		v.labels(v.path("metadata", "labels"), m.Labels)
		v.annotations(v.path("metadata", "annotations"), m.Annotations)
	}
	if k := c.Container; k != nil {
		v.pullPolicy(v.path("container", "image_pull_policy"), k.ImagePullPolicy)
		v.counts(v.path("container"), map[string]int{"env": len(k.Env), "env_from": len(k.EnvFrom), "volume_mounts": len(k.VolumeMounts)})
		v.envNames(v.path("container", "env"), k.Env)
		v.resources(v.path("container", "resources"), k.Resources)
	}
	if k := c.ContainerConfig; k != nil {
		v.pullPolicy(v.path("container_config", "imagePullPolicy"), k.ImagePullPolicy)
		v.counts(v.path("container_config"), map[string]int{"env": len(k.Env), "envFrom": len(k.EnvFrom), "volumeMounts": len(k.VolumeMounts)})
		v.envNames(v.path("container_config", "env"), k.Env)
		v.resources(v.path("container_config", "resources"), &k.Resources)
		for _, key := range unappliedContainerKeys(k) {
			v.fail(v.path("container_config", key), "is not applied to a Job's container (only name, image, imagePullPolicy, command, args, workingDir, env, envFrom, volumeMounts, resources and securityContext are); remove it")
		}
	}
	if p := c.Pod; p != nil {
		v.subdomain(v.path("pod", "service_account_name"), p.ServiceAccountName)
		v.labels(v.path("pod", "node_selector"), p.NodeSelector)
		v.counts(v.path("pod"), map[string]int{"tolerations": len(p.Tolerations), "volumes": len(p.Volumes), "image_pull_secrets": len(p.ImagePullSecrets)})
		for i, t := range p.Tolerations[:min(len(p.Tolerations), MaxListLen)] {
			v.toleration(index(v.path("pod", "tolerations"), i), t)
		}
		for i, vol := range p.Volumes[:min(len(p.Volumes), MaxListLen)] {
			v.dnsLabel(child(index(v.path("pod", "volumes"), i), "name"), vol.Name)
		}
		for i, s := range p.ImagePullSecrets[:min(len(p.ImagePullSecrets), MaxListLen)] {
			v.subdomain(index(v.path("pod", "image_pull_secrets"), i), s)
		}
	}
	if j := c.Job; j != nil {
		if j.ActiveDeadlineSeconds != nil && *j.ActiveDeadlineSeconds <= 0 {
			v.fail(v.path("job", "active_deadline_seconds"), "%d must be a positive number of seconds", *j.ActiveDeadlineSeconds)
		}
		if j.BackoffLimit != nil && *j.BackoffLimit < 0 {
			v.fail(v.path("job", "backoff_limit"), "%d must not be negative", *j.BackoffLimit)
		}
		if j.StartTimeoutSeconds != nil && *j.StartTimeoutSeconds <= 0 {
			v.fail(v.path("job", "start_timeout_seconds"), "%d must be a positive number of seconds", *j.StartTimeoutSeconds)
		}
		if j.TTLSecondsAfterFinished != nil && *j.TTLSecondsAfterFinished < 0 {
			v.fail(v.path("job", "ttl_seconds_after_finished"), "%d must not be negative", *j.TTLSecondsAfterFinished)
		}
	}
	v.limits(c.Requests(), c.Limits())
	return errors.Join(v.errs...)
}

func (v *validator) dnsLabel(path, s string) {
	if s == "" {
		return
	}
	for _, msg := range validation.IsDNS1123Label(s) {
		v.fail(path, "%q is not a valid name: %s", s, msg)
	}
}

func (v *validator) subdomain(path, s string) {
	if s == "" {
		return
	}
	for _, msg := range validation.IsDNS1123Subdomain(s) {
		v.fail(path, "%q is not a valid name: %s", s, msg)
	}
}

func (v *validator) labels(path string, m map[string]string) {
	for _, k := range sortedKeys(m) {
		for _, msg := range validation.IsQualifiedName(k) {
			v.fail(child(path, k), "%q is not a valid label key: %s", k, msg)
		}
		for _, msg := range validation.IsValidLabelValue(m[k]) {
			v.fail(child(path, k), "%q is not a valid label value: %s", m[k], msg)
		}
	}
}

func (v *validator) annotations(path string, m map[string]string) {
	for _, k := range sortedKeys(m) {
		for _, msg := range validation.IsQualifiedName(strings.ToLower(k)) {
			v.fail(child(path, k), "%q is not a valid annotation key: %s", k, msg)
		}
	}
}

var pullPolicies = []corev1.PullPolicy{corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever}

func (v *validator) pullPolicy(path string, p corev1.PullPolicy) {
	if p != "" && !slices.Contains(pullPolicies, p) {
		v.fail(path, "%q is not one of Always, IfNotPresent, Never", p)
	}
}

// MaxListLen caps each list of a config (env, volumes, mounts,
// tolerations…): far more than a Job needs, few enough that building and
// checking a Job stays cheap whatever a config holds.
const MaxListLen = 1000

// counts fails each list of parent over MaxListLen; its items are then
// not checked one by one.
func (v *validator) counts(parent string, lens map[string]int) {
	for _, name := range sortedKeys(lens) {
		if n := lens[name]; n > MaxListLen {
			v.fail(child(parent, name), "has %d entries; the limit is %d", n, MaxListLen)
		}
	}
}

func (v *validator) envNames(path string, env []corev1.EnvVar) {
	if len(env) > MaxListLen {
		return // counts said so
	}
	for i, e := range env {
		if e.Name == "" {
			v.fail(child(index(path, i), "name"), "must not be empty")
		}
	}
}

var (
	operators = []corev1.TolerationOperator{"", corev1.TolerationOpEqual, corev1.TolerationOpExists}
	effects   = []corev1.TaintEffect{"", corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute}
)

func (v *validator) toleration(path string, t corev1.Toleration) {
	if !slices.Contains(operators, t.Operator) {
		v.fail(child(path, "operator"), "%q is not one of Equal, Exists", t.Operator)
	}
	if !slices.Contains(effects, t.Effect) {
		v.fail(child(path, "effect"), "%q is not one of NoSchedule, PreferNoSchedule, NoExecute", t.Effect)
	}
	if t.Operator == corev1.TolerationOpExists && t.Value != "" {
		v.fail(child(path, "value"), "%q must be empty when operator is Exists", t.Value)
	}
	if t.Key != "" {
		for _, msg := range validation.IsQualifiedName(t.Key) {
			v.fail(child(path, "key"), "%q is not a valid taint key: %s", t.Key, msg)
		}
	}
	if t.TolerationSeconds != nil && t.Effect != corev1.TaintEffectNoExecute {
		v.fail(child(path, "tolerationSeconds"), "only applies with effect NoExecute")
	}
}

func (v *validator) resources(path string, r *corev1.ResourceRequirements) {
	if r == nil {
		return
	}
	for _, name := range sortedKeys(r.Limits) {
		q := r.Limits[name]
		if q.Sign() < 0 {
			v.fail(child(child(path, "limits"), string(name)), "%s must not be negative", q.String())
		}
	}
}

// limits checks that no request exceeds its limit in the combined
// resources (the API server would reject the Job).
func (v *validator) limits(requests, limits corev1.ResourceList) {
	for _, name := range sortedKeys(requests) {
		req := requests[name]
		lim, ok := limits[name]
		if ok && req.Cmp(lim) > 0 {
			v.fail(v.path("resource_requests", string(name)), "request %s is more than the limit %s", req.String(), lim.String())
		}
	}
}

// Requests combines the config's three places for requests in Mage's
// order of precedence, resource by resource: container.resources, then
// resource_requests over it, then container_config.resources over both.
// Mage replaces the whole list at each step (a GPU named only in
// container.resources is lost); magekube keeps what only one names.
func (c *Config) Requests() corev1.ResourceList {
	var detailed, cc corev1.ResourceList
	if c.Container != nil && c.Container.Resources != nil {
		detailed = c.Container.Resources.Requests
	}
	if c.ContainerConfig != nil {
		cc = c.ContainerConfig.Resources.Requests
	}
	return combine(detailed, c.ResourceRequests, cc)
}

// Limits is Requests for limits.
func (c *Config) Limits() corev1.ResourceList {
	var detailed, cc corev1.ResourceList
	if c.Container != nil && c.Container.Resources != nil {
		detailed = c.Container.Resources.Limits
	}
	if c.ContainerConfig != nil {
		cc = c.ContainerConfig.Resources.Limits
	}
	return combine(detailed, c.ResourceLimits, cc)
}

// unappliedContainerKeys names the container_config fields a Job's
// container does not take (probes, ports, lifecycle hooks: the Mage
// server's, never a batch Job's), so none vanishes silently.
func unappliedContainerKeys(k *corev1.Container) []string {
	var out []string
	add := func(set bool, key string) {
		if set {
			out = append(out, key)
		}
	}
	add(len(k.Ports) > 0, "ports")
	add(k.LivenessProbe != nil, "livenessProbe")
	add(k.ReadinessProbe != nil, "readinessProbe")
	add(k.StartupProbe != nil, "startupProbe")
	add(k.Lifecycle != nil, "lifecycle")
	add(k.Stdin, "stdin")
	add(k.StdinOnce, "stdinOnce")
	add(k.TTY, "tty")
	add(k.TerminationMessagePath != "", "terminationMessagePath")
	add(k.TerminationMessagePolicy != "", "terminationMessagePolicy")
	add(len(k.ResizePolicy) > 0, "resizePolicy")
	add(k.RestartPolicy != nil, "restartPolicy")
	add(len(k.RestartPolicyRules) > 0, "restartPolicyRules")
	add(len(k.VolumeDevices) > 0, "volumeDevices")
	return out
}

func combine(lists ...corev1.ResourceList) corev1.ResourceList {
	var out corev1.ResourceList
	for _, l := range lists {
		for k, q := range l {
			if out == nil {
				out = corev1.ResourceList{}
			}
			out[k] = q.DeepCopy()
		}
	}
	return out
}

// ContainerConfigName is the container's name when container_config
// names none, as in Mage's job_manager.py.
const ContainerConfigName = "mage-data"

// ContainerOverlays are the config's container settings in the order they
// apply: the detailed container: section, then container_config (both
// Mage formats describe the same container).
func (c *Config) ContainerOverlays() []corev1.Container {
	var out []corev1.Container
	if k := c.Container; k != nil {
		out = append(out, corev1.Container{
			Name: k.Name, Image: k.Image, ImagePullPolicy: k.ImagePullPolicy, Command: k.Command, Args: k.Args,
			WorkingDir: k.WorkingDir, Env: k.Env, EnvFrom: k.EnvFrom, VolumeMounts: k.VolumeMounts, SecurityContext: k.SecurityContext,
		})
	}
	if c.ContainerConfig != nil {
		k := *c.ContainerConfig
		if k.Name == "" {
			k.Name = ContainerConfigName // Mage's setdefault('name', 'mage-data')
		}
		out = append(out, k)
	}
	return out
}
