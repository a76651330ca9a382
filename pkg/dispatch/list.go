package dispatch

import (
	"context"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// The informers' first list is the agent's peak of memory and its
// restart time: client-go decodes a whole list before the informer trims
// a single object. The agent's list functions fetch pages instead and
// trim each page as it arrives, so at most one page of whole objects is
// held. (Where the API server serves streaming lists, client-go's
// WatchList streams and trims object by object, and these are not used.)

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
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			out := &batchv1.JobList{}
			meta, err := pages(ctx, pagedOptions(o, selector), func(ctx context.Context, o metav1.ListOptions) (metav1.ListMeta, error) {
				page, err := c.BatchV1().Jobs(ns).List(ctx, o)
				if err != nil {
					return metav1.ListMeta{}, err
				}
				for i := range page.Items {
					trimmed, _ := trimForCache(&page.Items[i])
					out.Items = append(out.Items, *trimmed.(*batchv1.Job))
				}
				return page.ListMeta, nil
			})
			out.ListMeta = meta
			return out, err
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = selector
			return c.BatchV1().Jobs(ns).Watch(ctx, o)
		},
	}
}

func podsListWatch(c kubernetes.Interface, ns, selector string) *cache.ListWatch {
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			out := &corev1.PodList{}
			meta, err := pages(ctx, pagedOptions(o, selector), func(ctx context.Context, o metav1.ListOptions) (metav1.ListMeta, error) {
				page, err := c.CoreV1().Pods(ns).List(ctx, o)
				if err != nil {
					return metav1.ListMeta{}, err
				}
				for i := range page.Items {
					trimmed, _ := trimForCache(&page.Items[i])
					out.Items = append(out.Items, *trimmed.(*corev1.Pod))
				}
				return page.ListMeta, nil
			})
			out.ListMeta = meta
			return out, err
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = selector
			return c.CoreV1().Pods(ns).Watch(ctx, o)
		},
	}
}
