package dispatch

import (
	"context"
	"errors"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
