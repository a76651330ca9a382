package kube

import (
	"context"
	"errors"
	"fmt"

	authv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Required is every permission the agent uses in its namespace.
var Required = []authv1.ResourceAttributes{
	{Group: "batch", Resource: "jobs", Verb: "create"},
	{Group: "batch", Resource: "jobs", Verb: "get"},
	{Group: "batch", Resource: "jobs", Verb: "list"},
	{Group: "batch", Resource: "jobs", Verb: "watch"},
	{Group: "batch", Resource: "jobs", Verb: "delete"},
	{Group: "", Resource: "pods", Verb: "get"},
	{Group: "", Resource: "pods", Verb: "list"},
	{Group: "", Resource: "pods", Verb: "watch"},
	{Group: "", Resource: "events", Verb: "create"},
	{Group: "", Resource: "events", Verb: "patch"},
	{Group: "", Resource: "events", Verb: "list"},
	{Group: "", Resource: "events", Verb: "watch"},
}

// Preflight asks the API server (SelfSubjectAccessReview) whether the
// agent may do everything it needs in namespace, and lists every missing
// permission with the manifest that grants it.
func Preflight(ctx context.Context, c kubernetes.Interface, namespace string) error {
	var errs []error
	for _, attr := range Required {
		attr.Namespace = namespace
		review, err := c.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx,
			&authv1.SelfSubjectAccessReview{Spec: authv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &attr}}, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("check permissions in namespace %s: %w", namespace, err)
		}
		if !review.Status.Allowed {
			group := attr.Group
			if group == "" {
				group = "core"
			}
			errs = append(errs, fmt.Errorf("missing permission: %s %s (%s) in namespace %s", attr.Verb, attr.Resource, group, namespace))
		}
	}
	if len(errs) > 0 {
		errs = append(errs, errors.New("grant them with the agent's Role in deploy/manifests (kubectl apply -k deploy/manifests/base)"))
		return errors.Join(errs...)
	}
	return nil
}
