package dispatch

import (
	"reflect"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"

	"github.com/magekube/magekube/pkg/jobspec"
)

// fullJob and fullPod carry every kind of field the API server sends:
// what the caches drop and what they keep.
func fullJob() *batchv1.Job {
	deleted := metav1.Unix(1e9+60, 0)
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "mage-x", Namespace: "ns", UID: "u-1", ResourceVersion: "42", Generation: 3,
			CreationTimestamp: metav1.Unix(1e9, 0), DeletionTimestamp: &deleted,
			Labels:      map[string]string{jobspec.LabelRun: "r-1", jobspec.LabelManagedBy: jobspec.ManagedByValue, "team": "data"},
			Annotations: map[string]string{jobspec.AnnotationRunID: "r-1"}, ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "m"}}},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "mage", Image: "mage:1", Env: []corev1.EnvVar{{Name: "A", Value: "b"}},
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}}},
			{Name: "side"}}}}},
		Status: batchv1.JobStatus{Active: 1, Failed: 2, Succeeded: 0, Conditions: []batchv1.JobCondition{
			{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: "m"}}},
	}
}

func fullPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "mage-x-abc", Namespace: "ns", UID: "u-2", ResourceVersion: "43", CreationTimestamp: metav1.Unix(1e9, 0),
			Labels: map[string]string{jobspec.LabelRun: "r-1", "batch.kubernetes.io/job-name": "mage-x"}},
		Spec: corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: "mage", Image: "mage:1"}}},
		Status: corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted", Message: "low on memory", PodIP: "10.0.0.1",
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "PodCompleted", LastTransitionTime: metav1.Unix(1e9, 0)},
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, Reason: "r", Message: "m", LastTransitionTime: metav1.Unix(1e9, 0)},
				{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "DeletionByTaintManager", Message: "t", LastTransitionTime: metav1.Unix(1e9, 0)},
				{Type: corev1.ContainersReady, Status: corev1.ConditionFalse}},
			InitContainerStatuses: []corev1.ContainerStatus{{Name: "init", Image: "i", State: corev1.ContainerState{
				Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}}}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "mage", Image: "mage:1", RestartCount: 1,
				State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "x"}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled"}}}}},
	}
}

// TestCompactKeepsWhatJudgeReads: a record, expanded, is the object with
// only what the agent reads (identity, times, the run label, the status
// Judge reads, the containers' names, the node), both from the cache
// (compact, then job or pod) and from the paged list (trim).
func TestCompactKeepsWhatJudgeReads(t *testing.T) {
	t.Parallel()
	deleted := metav1.Unix(1e9+60, 0)
	run := map[string]string{jobspec.LabelRun: "r-1"}
	for _, tc := range []struct {
		obj  runtime.Object
		want any
	}{{
		fullJob(),
		&batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: "mage-x", Namespace: "ns", UID: "u-1", ResourceVersion: "42",
				CreationTimestamp: metav1.Unix(1e9, 0), DeletionTimestamp: &deleted, Labels: run},
			Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "mage"}, {Name: "side"}}}}},
			Status: batchv1.JobStatus{Active: 1, Failed: 2, Conditions: []batchv1.JobCondition{
				{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: "m"}}},
		},
	}, {
		fullPod(),
		&corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "mage-x-abc", Namespace: "ns", UID: "u-2", ResourceVersion: "43",
				CreationTimestamp: metav1.Unix(1e9, 0), Labels: run},
			Spec: corev1.PodSpec{NodeName: "node-1"},
			Status: corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted", Message: "low on memory",
				Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse},
					{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, Reason: "r", Message: "m"},
					{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "DeletionByTaintManager", Message: "t"}},
				InitContainerStatuses: []corev1.ContainerStatus{{Name: "init", State: corev1.ContainerState{
					Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}}}},
				ContainerStatuses: []corev1.ContainerStatus{{Name: "mage",
					State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "x"}},
					LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled"}}}}},
		},
	}, {&batchv1.Job{}, &batchv1.Job{}}, {&corev1.Pod{}, &corev1.Pod{}}} {
		rec, err := compact(tc.obj)
		if err != nil {
			t.Fatal(err)
		}
		var cached any
		switch c := rec.(type) {
		case *cachedJob:
			cached = c.job()
		case *cachedPod:
			cached = c.pod()
		default:
			t.Fatalf("compact(%T) = %T", tc.obj, rec)
		}
		for name, got := range map[string]any{"cached": cached, "trimmed": trim(tc.obj)} {
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s %T:\n got %+v\nwant %+v", name, tc.obj, got, tc.want)
			}
		}
		if again, _ := compact(rec); again != rec {
			t.Errorf("compact is not idempotent on %T", rec)
		}
	}
}

// TestCompactRecordsAreKeyedAndIndexed: the informer's keys and the
// agent's indexes read the records.
func TestCompactRecordsAreKeyedAndIndexed(t *testing.T) {
	t.Parallel()
	job, _ := compact(fullJob())
	pod, _ := compact(fullPod())
	for _, obj := range []any{job, pod, cache.DeletedFinalStateUnknown{Key: "ns/x", Obj: pod}} {
		if got := runOf(obj); got != "r-1" {
			t.Errorf("runOf(%T) = %q", obj, got)
		}
	}
	jobs := cache.NewIndexer(cache.DeletionHandlingMetaNamespaceKeyFunc, cache.Indexers{})
	pods := cache.NewIndexer(cache.DeletionHandlingMetaNamespaceKeyFunc, cache.Indexers{runIndex: byRun})
	if err := jobs.Add(job); err != nil {
		t.Fatal(err)
	}
	if err := pods.Add(pod); err != nil {
		t.Fatal(err)
	}
	tr := &tracker{jobs: jobs, pods: pods}
	if j := tr.job("ns", "mage-x"); j == nil || j.UID != "u-1" || j.Status.Failed != 2 {
		t.Errorf("job: %+v", j)
	}
	if p := tr.podsOf("r-1"); len(p) != 1 || p[0].Spec.NodeName != "node-1" {
		t.Errorf("pods of r-1: %+v", p)
	}
	m := map[string]*cachedJob{}
	if tr.addJobsByRun(m); len(m) != 1 || m["r-1"] == nil {
		t.Errorf("jobs by run: %+v", m)
	}
}

// BenchmarkCacheRecord prints the bytes one Job and one pod take in the
// cache (record) and what a refresh allocates to read them back as the
// API objects Judge takes (expand). The trimmed API structs the caches
// held before the records took 5,216 bytes.
func BenchmarkCacheRecord(b *testing.B) {
	j, p := fullJob(), fullPod()
	j.Status.Conditions, p.Status.Phase = nil, corev1.PodRunning // a running run's
	b.Run("record", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = compact(j)
			_, _ = compact(p)
		}
	})
	cj, cp := compactJob(j), compactPod(p)
	b.Run("expand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = cj.job()
			_ = cp.pod()
		}
	})
}
