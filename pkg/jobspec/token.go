package jobspec

import (
	corev1 "k8s.io/api/core/v1"
)

// MageContainer is the server pod's Mage container as the settings pick
// it: ServerContainer by name, else the first that is not the agent's.
func MageContainer(pod *corev1.Pod, s Settings) (*corev1.Container, error) {
	server, _, err := containers(pod, s)
	return server, err
}

// TokenVolume reports whether v carries a Kubernetes service-account
// token: a projected serviceAccountToken source. (A legacy token Secret
// cannot be told from other Secrets by the pod spec; Secret volumes are
// judged by the policy like any other Secret.)
func TokenVolume(v corev1.Volume) bool {
	return projectsToken(v, func(*corev1.ServiceAccountTokenProjection) bool { return true })
}

// APITokenVolume reports whether v carries a token for the Kubernetes API:
// a projected serviceAccountToken source with no audience of its own (the
// API server's). A token bound to another audience is for someone else:
// the one EKS's IRSA webhook mounts into every container (audience
// sts.amazonaws.com), a Vault login. Counting those as API credentials
// would loosen the token split; not counting an unusual API audience only
// tightens it.
func APITokenVolume(v corev1.Volume) bool {
	return projectsToken(v, func(t *corev1.ServiceAccountTokenProjection) bool { return t.Audience == "" })
}

// projectsToken reports whether v projects a service-account token that
// match accepts.
func projectsToken(v corev1.Volume, match func(*corev1.ServiceAccountTokenProjection) bool) bool {
	if v.Projected == nil {
		return false
	}
	for _, s := range v.Projected.Sources {
		if s.ServiceAccountToken != nil && match(s.ServiceAccountToken) {
			return true
		}
	}
	return false
}

// HoldsToken reports whether container c of pod mounts a token for the
// Kubernetes API, that is, whether it already has the pod's Kubernetes
// credentials. Under the token split only the agent's container does.
func HoldsToken(pod *corev1.Pod, c *corev1.Container) bool {
	mounted := map[string]bool{}
	for _, m := range c.VolumeMounts {
		mounted[m.Name] = true
	}
	for _, v := range pod.Spec.Volumes {
		if mounted[v.Name] && APITokenVolume(v) {
			return true
		}
	}
	return false
}
