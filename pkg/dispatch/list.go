package dispatch

import (
	"context"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Where the API server serves streaming lists (WatchList, on by default
// from Kubernetes 1.34), client-go streams the first list through the
// watch and the informers' transform (compact, cache.go) reduces it
// object by object. Otherwise client-go would decode a whole list before
// reducing a single object: the agent's list fetches pages instead and
// trims each page as it arrives (trim), so at most one page of whole
// objects is held. Watch events reach the reflector untouched: it reads
// WatchList's end-of-initial-events bookmark by an annotation trimming
// would drop.

// listPageSize is how many objects one list page holds.
const listPageSize = 500

// pagedOptions are the options of a list in pages: the agent's selector,
// the page size, and a consistent read. The watch cache answers
// resourceVersion "0" whole whatever the limit, so every list goes to
// etcd, which pages (the informer watches from the list's version
// either way).
func pagedOptions(o metav1.ListOptions, selector string) metav1.ListOptions {
	o.LabelSelector, o.Limit = selector, listPageSize
	o.ResourceVersion, o.ResourceVersionMatch = "", ""
	return o
}

// pages calls page for each page of a list, following its continue
// token, and returns the first page's list metadata (all pages are of
// one snapshot).
func pages(ctx context.Context, o metav1.ListOptions, page func(context.Context, metav1.ListOptions) (metav1.ListMeta, error)) (metav1.ListMeta, error) {
	var first metav1.ListMeta
	for {
		meta, err := page(ctx, o)
		if err != nil {
			return metav1.ListMeta{}, err
		}
		if first.ResourceVersion == "" {
			first = meta
		}
		if meta.Continue == "" {
			first.Continue = ""
			return first, nil
		}
		o.Continue = meta.Continue
	}
}

func jobsListWatch(c kubernetes.Interface, ns, selector string) *cache.ListWatch {
	return trimmedListWatch(selector, &batchv1.JobList{},
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return c.BatchV1().Jobs(ns).List(ctx, o)
		},
		func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return c.BatchV1().Jobs(ns).Watch(ctx, o)
		})
}

func podsListWatch(c kubernetes.Interface, ns, selector string) *cache.ListWatch {
	return trimmedListWatch(selector, &corev1.PodList{},
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return c.CoreV1().Pods(ns).List(ctx, o)
		},
		func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return c.CoreV1().Pods(ns).Watch(ctx, o)
		})
}

// trimmedListWatch lists in pages into a list like empty, each page
// trimmed as it arrives, and watches, both with the agent's selector.
func trimmedListWatch(selector string, empty runtime.Object,
	list func(context.Context, metav1.ListOptions) (runtime.Object, error),
	watchFn func(context.Context, metav1.ListOptions) (watch.Interface, error)) *cache.ListWatch {
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			var items []runtime.Object
			meta, err := pages(ctx, pagedOptions(o, selector), func(ctx context.Context, o metav1.ListOptions) (metav1.ListMeta, error) {
				page, err := list(ctx, o)
				if err != nil {
					return metav1.ListMeta{}, err
				}
				err = apimeta.EachListItem(page, func(obj runtime.Object) error {
					items = append(items, trim(obj))
					return nil
				})
				lm, lerr := apimeta.ListAccessor(page)
				if err == nil {
					err = lerr
				}
				if err != nil {
					return metav1.ListMeta{}, err
				}
				return metav1.ListMeta{ResourceVersion: lm.GetResourceVersion(), Continue: lm.GetContinue()}, nil
			})
			if err != nil {
				return nil, err
			}
			out := empty.DeepCopyObject()
			if err := apimeta.SetList(out, items); err != nil {
				return nil, err
			}
			lm, err := apimeta.ListAccessor(out)
			if err != nil {
				return nil, err
			}
			lm.SetResourceVersion(meta.ResourceVersion)
			return out, nil
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = selector
			return watchFn(ctx, o)
		},
	}
}
