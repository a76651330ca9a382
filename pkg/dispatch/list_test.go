package dispatch

import (
	"context"
	"errors"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// TestPages: a list in pages follows the continue token to the end with
// the agent's selector and page size, reads consistently, and keeps the
// first page's version.
func TestPages(t *testing.T) {
	t.Parallel()
	var asked []metav1.ListOptions
	meta, err := pages(context.Background(), pagedOptions(metav1.ListOptions{ResourceVersion: "0", ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan}, "app=x"),
		func(_ context.Context, o metav1.ListOptions) (metav1.ListMeta, error) {
			asked = append(asked, o)
			switch o.Continue {
			case "":
				return metav1.ListMeta{ResourceVersion: "41", Continue: "p2"}, nil
			case "p2":
				return metav1.ListMeta{ResourceVersion: "41", Continue: "p3"}, nil
			}
			return metav1.ListMeta{ResourceVersion: "41"}, nil
		})
	if err != nil || meta.ResourceVersion != "41" || meta.Continue != "" || len(asked) != 3 {
		t.Fatalf("meta %+v, %d pages, err %v", meta, len(asked), err)
	}
	for _, o := range asked {
		if o.LabelSelector != "app=x" || o.Limit != listPageSize || o.ResourceVersion != "" || o.ResourceVersionMatch != "" {
			t.Errorf("page asked with %+v", o)
		}
	}
	boom := errors.New("boom")
	if _, err := pages(context.Background(), metav1.ListOptions{}, func(context.Context, metav1.ListOptions) (metav1.ListMeta, error) { return metav1.ListMeta{}, boom }); !errors.Is(err, boom) {
		t.Errorf("err %v, want the page's", err)
	}
}

// TestTrimmedList: every page's objects arrive trimmed, in one list with
// the first page's version.
func TestTrimmedList(t *testing.T) {
	t.Parallel()
	full := func(name string) batchv1.Job {
		return batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: "7", Labels: map[string]string{"x": "y"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "m"}}}}
	}
	lw := trimmedListWatch("app=x", &batchv1.JobList{}, func(_ context.Context, o metav1.ListOptions) (runtime.Object, error) {
		if o.Continue == "" {
			return &batchv1.JobList{ListMeta: metav1.ListMeta{ResourceVersion: "41", Continue: "p2"}, Items: []batchv1.Job{full("a"), full("b")}}, nil
		}
		return &batchv1.JobList{ListMeta: metav1.ListMeta{ResourceVersion: "41"}, Items: []batchv1.Job{full("c")}}, nil
	}, nil)
	obj, err := lw.ListWithContextFunc(context.Background(), metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	list := obj.(*batchv1.JobList)
	if list.ResourceVersion != "41" || len(list.Items) != 3 {
		t.Fatalf("list version %q, %d items", list.ResourceVersion, len(list.Items))
	}
	for _, j := range list.Items {
		if j.Labels != nil || j.ManagedFields != nil || j.ResourceVersion != "7" {
			t.Errorf("job %s not trimmed: %+v", j.Name, j.ObjectMeta)
		}
	}
}
