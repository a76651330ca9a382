package dispatch

import (
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPolicyViolations(t *testing.T) {
	t.Parallel()
	server := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "mage"}, Spec: corev1.PodSpec{
		ServiceAccountName: "mage-server",
		Containers:         []corev1.Container{{Name: "mage"}},
		Volumes:            []corev1.Volume{{Name: "fs", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/data"}}}},
	}}
	yes := true
	job := func(mutate func(*batchv1.Job)) *batchv1.Job {
		j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "mage"}}
		j.Spec.Template.Spec = corev1.PodSpec{ServiceAccountName: "default", Containers: []corev1.Container{{Name: "c"}},
			Volumes: []corev1.Volume{{Name: "fs", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/data"}}}}}
		if mutate != nil {
			mutate(j)
		}
		return j
	}
	for _, tc := range []struct {
		name   string
		policy Policy
		job    *batchv1.Job
		want   []string
	}{
		{"inherited is fine", Policy{}, job(nil), nil},
		{"server's service account is fine", Policy{}, job(func(j *batchv1.Job) { j.Spec.Template.Spec.ServiceAccountName = "mage-server" }), nil},
		{"other namespace", Policy{}, job(func(j *batchv1.Job) { j.Namespace = "other" }), []string{`namespace "other"`}},
		{"other namespace allowed", Policy{Namespaces: []string{"other"}}, job(func(j *batchv1.Job) { j.Namespace = "other" }), nil},
		{"other service account", Policy{}, job(func(j *batchv1.Job) { j.Spec.Template.Spec.ServiceAccountName = "admin" }), []string{`service account "admin"`}},
		{"any service account allowed", Policy{ServiceAccounts: []string{"*"}}, job(func(j *batchv1.Job) { j.Spec.Template.Spec.ServiceAccountName = "admin" }), nil},
		{"privileged", Policy{}, job(func(j *batchv1.Job) {
			j.Spec.Template.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: &yes}
		}), []string{`container "c" asks for privileged`}},
		{"capabilities", Policy{}, job(func(j *batchv1.Job) {
			j.Spec.Template.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"SYS_ADMIN"}}}
		}), []string{"added capabilities"}},
		{"new host path", Policy{}, job(func(j *batchv1.Job) {
			j.Spec.Template.Spec.Volumes = append(j.Spec.Template.Spec.Volumes, corev1.Volume{Name: "root", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}})
		}), []string{`volume "root" mounts host path /`}},
		{"host network", Policy{HostPaths: true, Privileged: true}, job(func(j *batchv1.Job) { j.Spec.Template.Spec.HostNetwork = true }), []string{"host namespaces"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := tc.policy.Violations(server, tc.job)
			if len(got) != len(tc.want) {
				t.Fatalf("violations %q, want %d", got, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("violation %q lacks %q", got[i], w)
				}
			}
		})
	}
}
