package dispatch

import (
	"context"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/magekube/magekube/pkg/protocol"
)

// Pods the API server refuses (a ResourceQuota, PodSecurity admission, a
// webhook) never exist: the Job controller records a FailedCreate Event
// on the Job and tries again with backoff. The agent watches those Events
// (field-selected: reason FailedCreate on Jobs) and judges a run whose
// Job has no pod by the latest of them, within seconds instead of at the
// start timeout.

// Refusal is the API server's latest refusal of a Job's pods.
type Refusal struct {
	Message string
	At      time.Time
}

// quotaWait is how long a run whose pods a ResourceQuota refuses waits
// for the quota to free up before it fails (or its start timeout, when
// shorter). A quota whose limit is zero fails the run at once.
const quotaWait = 5 * time.Minute

// classify sorts an API refusal (of a Job create, or the Job
// controller's FailedCreate message) into the reason vocabulary, and says
// whether it can pass without anyone changing the cluster.
func classify(message string) (reason string, canPass bool) {
	switch {
	case strings.Contains(message, "exceeded quota"):
		return protocol.ReasonQuotaExceeded, !zeroQuota(message)
	case strings.Contains(message, "violates PodSecurity"):
		return protocol.ReasonPodSecurityRejected, false
	case strings.Contains(message, "admission webhook") && strings.Contains(message, "denied the request"),
		strings.Contains(message, "ValidatingAdmissionPolicy"),
		strings.Contains(message, "is forbidden: maximum"), strings.Contains(message, "is forbidden: minimum"):
		return protocol.ReasonAdmissionRejected, false
	}
	return protocol.ReasonFailedCreate, true
}

// zeroQuota reports whether a quota refusal names a limit of zero
// ("limited: pods=0"): nothing freeing up makes room under it.
func zeroQuota(message string) bool {
	_, limited, ok := strings.Cut(message, "limited: ")
	if !ok {
		return false
	}
	for _, kv := range strings.Split(limited, ",") {
		_, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			continue
		}
		if q, err := resource.ParseQuantity(strings.TrimSpace(v)); err == nil && q.IsZero() {
			return true
		}
	}
	return false
}

// cachedRefusal is what the cache keeps of a FailedCreate Event.
type cachedRefusal struct {
	metav1.ObjectMeta
	job     string
	jobUID  types.UID
	message string
	at      time.Time
}

func compactRefusal(obj any) (any, error) {
	e, ok := obj.(*corev1.Event)
	if !ok {
		return obj, nil
	}
	c := &cachedRefusal{job: e.InvolvedObject.Name, jobUID: e.InvolvedObject.UID, message: e.Message, at: e.LastTimestamp.Time}
	if c.at.IsZero() {
		c.at = e.EventTime.Time
	}
	if c.at.IsZero() {
		c.at = e.CreationTimestamp.Time
	}
	c.ObjectMeta, _ = identity(e.ObjectMeta)
	return c, nil
}

// refusalSelector selects the Job controller's FailedCreate Events.
var refusalSelector = fields.Set{"reason": "FailedCreate", "involvedObject.kind": "Job"}.String()

func refusalsListWatch(c kubernetes.Interface, ns string) *cache.ListWatch {
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = refusalSelector
			return c.CoreV1().Events(ns).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = refusalSelector
			return c.CoreV1().Events(ns).Watch(ctx, o)
		},
	}
}

// jobUIDIndex indexes refusals by their Job's UID.
const jobUIDIndex = "jobUID"

func byJobUID(obj any) ([]string, error) {
	if c, ok := obj.(*cachedRefusal); ok && c.jobUID != "" {
		return []string{string(c.jobUID)}, nil
	}
	return nil, nil
}

// refusalOf is the latest refusal of the pods of the Job with uid.
func (t *tracker) refusalOf(uid types.UID) *Refusal {
	if t.refusals == nil || uid == "" {
		return nil
	}
	objs, err := t.refusals.ByIndex(jobUIDIndex, string(uid))
	if err != nil {
		return nil
	}
	var latest *cachedRefusal
	for _, obj := range objs {
		if c, ok := obj.(*cachedRefusal); ok && (latest == nil || c.at.After(latest.at)) {
			latest = c
		}
	}
	if latest == nil {
		return nil
	}
	return &Refusal{Message: latest.message, At: latest.at}
}

// onRefusal runs in the informer's goroutine: it marks the Job's run
// dirty, if the Job is one of this agent's.
func (a *Agent) onRefusal(t *tracker, obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	c, ok := obj.(*cachedRefusal)
	if !ok {
		return
	}
	if job := t.cachedJob(c.Namespace, c.job); job != nil && job.UID == c.jobUID && job.run != "" {
		a.dirty.add(job.run)
	}
}
