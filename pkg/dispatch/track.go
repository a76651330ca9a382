package dispatch

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/magekube/magekube/pkg/jobspec"

	"github.com/magekube/magekube/pkg/protocol"
)

// tracker holds the label-selected Job and Pod informers of one namespace.
type tracker struct {
	jobs batchlisters.JobLister
	// pods is indexed by run id: a run's pods are found without a scan.
	pods   cache.Indexer
	cancel context.CancelFunc
	done   chan struct{}
}

func (t *tracker) stop() {
	t.cancel()
	<-t.done
}

// tracker returns the namespace's tracker, starting it and waiting for its
// caches on first use.
func (a *Agent) tracker(ctx context.Context, ns string) (*tracker, error) {
	if t, ok := a.trackers[ns]; ok {
		return t, nil
	}
	selector := labels.Set{jobspec.LabelManagedBy: jobspec.ManagedByValue, jobspec.LabelInstance: a.o.Builder.Settings.Default().Instance}.String()
	factory := informers.NewSharedInformerFactoryWithOptions(a.o.Client, 0,
		informers.WithNamespace(ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = selector }),
		informers.WithTransform(trimForCache))
	jobs := factory.Batch().V1().Jobs()
	pods := factory.Core().V1().Pods()
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    a.onObject,
		UpdateFunc: func(_, obj any) { a.onObject(obj) },
		DeleteFunc: a.onObject,
	}
	if _, err := jobs.Informer().AddEventHandler(handler); err != nil {
		return nil, err
	}
	if _, err := pods.Informer().AddEventHandler(handler); err != nil {
		return nil, err
	}
	if err := pods.Informer().AddIndexers(cache.Indexers{runIndex: byRun}); err != nil {
		return nil, err
	}
	tctx, cancel := context.WithCancel(ctx)
	t := &tracker{jobs: jobs.Lister(), pods: pods.Informer().GetIndexer(), cancel: cancel, done: make(chan struct{})}
	factory.Start(tctx.Done())
	go func() { factory.Shutdown(); close(t.done) }()
	syncCtx, syncCancel := context.WithTimeout(tctx, time.Minute)
	defer syncCancel()
	for typ, ok := range factory.WaitForCacheSync(syncCtx.Done()) {
		if !ok {
			cancel()
			<-t.done
			return nil, fmt.Errorf("watch %s in namespace %s did not sync: check the agent's RBAC (list and watch jobs and pods in %s)", typ, ns, ns)
		}
	}
	a.trackers[ns] = t
	return t, nil
}

// onObject runs in informer goroutines: it only marks the run dirty.
func (a *Agent) onObject(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if m, ok := obj.(metav1.Object); ok {
		if id := m.GetLabels()[jobspec.LabelRun]; id != "" {
			a.dirty.add(id)
		}
	}
}

// runIndex indexes the pod cache by the run label.
const runIndex = "run"

func byRun(obj any) ([]string, error) {
	if m, ok := obj.(metav1.Object); ok {
		if id := m.GetLabels()[jobspec.LabelRun]; id != "" {
			return []string{id}, nil
		}
	}
	return nil, nil
}

// trimForCache keeps only what the agent reads of a Job or a pod (see
// observe.go and trace.go), so the caches stay small with thousands of
// runs tracked: identity, the run label, times and the status Judge
// reads; of a Job's spec only its containers' names, of a pod's only its
// node. The rest (the pod template inherited from the server pod, env,
// volumes, other labels, images, IPs) is dropped.
func trimForCache(obj any) (any, error) {
	switch o := obj.(type) {
	case *batchv1.Job:
		var containers []corev1.Container
		for _, c := range o.Spec.Template.Spec.Containers {
			containers = append(containers, corev1.Container{Name: c.Name})
		}
		return &batchv1.Job{
			ObjectMeta: trimMeta(o.ObjectMeta),
			Spec:       batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: containers}}},
			Status: batchv1.JobStatus{
				Conditions: o.Status.Conditions,
				Active:     o.Status.Active, Succeeded: o.Status.Succeeded, Failed: o.Status.Failed,
			},
		}, nil
	case *corev1.Pod:
		st := corev1.PodStatus{
			Phase: o.Status.Phase, Reason: o.Status.Reason, Message: o.Status.Message,
			InitContainerStatuses: trimContainerStatuses(o.Status.InitContainerStatuses),
			ContainerStatuses:     trimContainerStatuses(o.Status.ContainerStatuses),
		}
		for _, c := range o.Status.Conditions {
			if c.Type == corev1.PodScheduled {
				st.Conditions = append(st.Conditions, corev1.PodCondition{Type: c.Type, Status: c.Status, Reason: c.Reason, Message: c.Message})
			}
		}
		return &corev1.Pod{
			ObjectMeta: trimMeta(o.ObjectMeta),
			Spec:       corev1.PodSpec{NodeName: o.Spec.NodeName},
			Status:     st,
		}, nil
	}
	return obj, nil
}

func trimMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	out := metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		CreationTimestamp: m.CreationTimestamp, DeletionTimestamp: m.DeletionTimestamp,
	}
	if id, ok := m.Labels[jobspec.LabelRun]; ok {
		out.Labels = map[string]string{jobspec.LabelRun: id}
	}
	return out
}

func trimContainerStatuses(in []corev1.ContainerStatus) []corev1.ContainerStatus {
	var out []corev1.ContainerStatus
	for _, s := range in {
		out = append(out, corev1.ContainerStatus{Name: s.Name, State: s.State, LastTerminationState: s.LastTerminationState})
	}
	return out
}

// observe gathers what the caches and the run directory say of r.
func (a *Agent) observe(r *run) Observation {
	var o Observation
	t, ok := a.trackers[r.namespace]
	if !ok || r.job == "" {
		return o
	}
	if job, err := t.jobs.Jobs(r.namespace).Get(r.job); err == nil {
		o.Job = job
	}
	if objs, err := t.pods.ByIndex(runIndex, r.id); err == nil {
		for _, obj := range objs {
			if p, ok := obj.(*corev1.Pod); ok {
				o.Pods = append(o.Pods, p)
			}
		}
	}
	o.Result = a.sealedResult(r, o.Job)
	return o
}

// sealedResult is the run's result.json when its own pod wrote it: sealed
// with its Job's UID, which no other pod knows. Any other is ignored, and
// the run is judged by its Job and pods alone.
func (a *Agent) sealedResult(r *run, job *batchv1.Job) *protocol.Result {
	res := a.readResult(r.id)
	if res == nil {
		return nil
	}
	if job != nil && r.jobUID == "" {
		r.jobUID = job.UID
	}
	if r.jobUID == "" {
		if t, ok := a.trackers[r.namespace]; ok {
			if cached, err := t.jobs.Jobs(r.namespace).Get(r.job); err == nil {
				r.jobUID = cached.UID
			}
		}
	}
	if !protocol.ResultSealed(string(r.jobUID), r.id, *res) {
		if !r.unsealedSeen {
			r.unsealedSeen = true
			a.log.Warn("result.json ignored: not sealed by the run's own pod", "run", r.id, "job", r.job)
		}
		return nil
	}
	return res
}
