package dispatch

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"

	"github.com/magekube/magekube/pkg/jobspec"
)

// The informer caches hold compact records, not API structs. A trimmed
// batchv1.Job or corev1.Pod is still about 2 KiB, mostly zero fields of
// the pod template and status (a Job struct alone is 1,320 bytes, a Pod
// 1,240, a label map a few hundred): with 10,000 runs tracked that was
// 44 MiB of the agent's heap. The informers' transform (compact) turns
// each object into a cachedJob or cachedPod as it arrives, keeping only
// what the agent reads (observe.go, trace.go): identity, the run label,
// times and the status Judge reads; of a Job's spec its containers'
// names, of a pod's its node. The pod template inherited from the server
// pod, env, volumes, other labels, images and IPs are dropped. The
// tracker turns the few records a refresh reads back into the trimmed
// API objects Judge takes (job, pod); the paged list (list.go) hands the
// reflector the same trimmed objects (trim).

// cachedJob is what the cache keeps of a Job: its identity and times
// (ObjectMeta, for the informer's keys), its run, its containers' names
// and its status counts and conditions.
type cachedJob struct {
	metav1.ObjectMeta
	run                       string
	containers                []string
	conditions                []batchv1.JobCondition
	active, succeeded, failed int32
}

// cachedPod is what the cache keeps of a pod: identity and times, its
// run, node, phase, reason, the PodScheduled condition and its
// containers' states.
type cachedPod struct {
	metav1.ObjectMeta
	run             string
	node            string
	phase           corev1.PodPhase
	reason, message string
	conditions      []corev1.PodCondition // those Judge reads, untimed
	containers      []cachedContainer
}

type cachedContainer struct {
	name        string
	init        bool
	state, last corev1.ContainerState
}

// compact is the informers' transform. It is idempotent (the reflector's
// streaming list and the informer's queue both apply it): a record, or a
// tombstone, passes through.
func compact(obj any) (any, error) {
	switch o := obj.(type) {
	case *batchv1.Job:
		return compactJob(o), nil
	case *corev1.Pod:
		return compactPod(o), nil
	}
	return obj, nil
}

// trim is an object as the caches keep it, as the API object Judge reads:
// what the paged list hands the reflector, which takes API objects.
func trim(obj runtime.Object) runtime.Object {
	switch o := obj.(type) {
	case *batchv1.Job:
		return compactJob(o).job()
	case *corev1.Pod:
		return compactPod(o).pod()
	}
	return obj
}

// identity is what a record keeps of an object's metadata: its identity
// and times (for the informer's keys), and its run.
func identity(m metav1.ObjectMeta) (metav1.ObjectMeta, string) {
	return metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		CreationTimestamp: m.CreationTimestamp, DeletionTimestamp: m.DeletionTimestamp,
	}, m.Labels[jobspec.LabelRun]
}

func compactJob(j *batchv1.Job) *cachedJob {
	c := &cachedJob{
		conditions: j.Status.Conditions,
		active:     j.Status.Active, succeeded: j.Status.Succeeded, failed: j.Status.Failed,
	}
	c.ObjectMeta, c.run = identity(j.ObjectMeta)
	for _, ct := range j.Spec.Template.Spec.Containers {
		c.containers = append(c.containers, ct.Name)
	}
	return c
}

func compactPod(p *corev1.Pod) *cachedPod {
	c := &cachedPod{
		node:  p.Spec.NodeName,
		phase: p.Status.Phase, reason: p.Status.Reason, message: p.Status.Message,
	}
	c.ObjectMeta, c.run = identity(p.ObjectMeta)
	for _, cond := range p.Status.Conditions {
		switch cond.Type {
		case corev1.PodScheduled, corev1.DisruptionTarget:
			c.conditions = append(c.conditions, corev1.PodCondition{Type: cond.Type, Status: cond.Status, Reason: cond.Reason, Message: cond.Message})
		case corev1.PodReady:
			c.conditions = append(c.conditions, corev1.PodCondition{Type: cond.Type, Status: cond.Status})
		}
	}
	for _, s := range p.Status.InitContainerStatuses {
		c.containers = append(c.containers, cachedContainer{name: s.Name, init: true, state: s.State, last: s.LastTerminationState})
	}
	for _, s := range p.Status.ContainerStatuses {
		c.containers = append(c.containers, cachedContainer{name: s.Name, state: s.State, last: s.LastTerminationState})
	}
	return c
}

// expandMeta is the trimmed ObjectMeta: the record's, with the run label.
func expandMeta(m metav1.ObjectMeta, run string) metav1.ObjectMeta {
	if run != "" {
		m.Labels = map[string]string{jobspec.LabelRun: run}
	}
	return m
}

// job is the record as the trimmed Job Judge reads.
func (c *cachedJob) job() *batchv1.Job {
	var containers []corev1.Container
	for _, name := range c.containers {
		containers = append(containers, corev1.Container{Name: name})
	}
	return &batchv1.Job{
		ObjectMeta: expandMeta(c.ObjectMeta, c.run),
		Spec:       batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: containers}}},
		Status: batchv1.JobStatus{
			Conditions: c.conditions,
			Active:     c.active, Succeeded: c.succeeded, Failed: c.failed,
		},
	}
}

// pod is the record as the trimmed pod Judge reads.
func (c *cachedPod) pod() *corev1.Pod {
	st := corev1.PodStatus{Phase: c.phase, Reason: c.reason, Message: c.message, Conditions: c.conditions}
	for _, ct := range c.containers {
		s := corev1.ContainerStatus{Name: ct.name, State: ct.state, LastTerminationState: ct.last}
		if ct.init {
			st.InitContainerStatuses = append(st.InitContainerStatuses, s)
		} else {
			st.ContainerStatuses = append(st.ContainerStatuses, s)
		}
	}
	return &corev1.Pod{ObjectMeta: expandMeta(c.ObjectMeta, c.run), Spec: corev1.PodSpec{NodeName: c.node}, Status: st}
}

// runOf is the run an object in the caches (or an informer event) belongs
// to.
func runOf(obj any) string {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	switch o := obj.(type) {
	case *cachedJob:
		return o.run
	case *cachedPod:
		return o.run
	case metav1.Object:
		return o.GetLabels()[jobspec.LabelRun]
	}
	return ""
}

// job is the cached Job ns/name, trimmed, or nil.
func (t *tracker) job(ns, name string) *batchv1.Job {
	if c := t.cachedJob(ns, name); c != nil {
		return c.job()
	}
	return nil
}

func (t *tracker) cachedJob(ns, name string) *cachedJob {
	obj, ok, err := t.jobs.GetByKey(ns + "/" + name)
	if err != nil || !ok {
		return nil
	}
	c, _ := obj.(*cachedJob)
	return c
}

// podsOf is the run's cached pods, trimmed.
func (t *tracker) podsOf(run string) []*corev1.Pod {
	objs, err := t.pods.ByIndex(runIndex, run)
	if err != nil {
		return nil
	}
	var out []*corev1.Pod
	for _, obj := range objs {
		if c, ok := obj.(*cachedPod); ok {
			out = append(out, c.pod())
		}
	}
	return out
}

// addJobsByRun adds the cache's Jobs (all of the tracker's namespace) to
// out, by run.
func (t *tracker) addJobsByRun(out map[string]*cachedJob) {
	for _, obj := range t.jobs.List() {
		if c, ok := obj.(*cachedJob); ok && c.run != "" {
			out[c.run] = c
		}
	}
}
