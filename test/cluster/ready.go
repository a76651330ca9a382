package cluster

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// untainted: no taint but the fake nodes' own.
func untainted(node corev1.Node) bool {
	for _, t := range node.Spec.Taints {
		if t.Key != FakeNodeLabel {
			return false
		}
	}
	return true
}

// waitNodesReady waits until n nodes report Ready.
func (c *Cluster) waitNodesReady(ctx context.Context, n int) error {
	if n == 0 {
		return nil
	}
	client, err := c.Client()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		ready := 0
		if err == nil {
			for _, node := range nodes.Items {
				for _, cond := range node.Status.Conditions {
					if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue && untainted(node) {
						ready++
					}
				}
			}
		}
		if ready == n {
			return nil
		}
		for _, p := range c.state.Procs {
			if p.cmd != nil && p.cmd.ProcessState != nil {
				return fmt.Errorf("%s exited:\n%s", p.Name, tail(p.Log))
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%d of %d nodes ready after 3m (logs in %s)", ready, n, c.dir("logs"))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitDefaultServiceAccount waits for the controller manager to create
// the default service account, which pods need before they are admitted.
func (c *Cluster) waitDefaultServiceAccount(ctx context.Context) error {
	client, err := c.Client()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{}); err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("no default service account after 60s:\n%s", tail(c.dir("logs", "kube-controller-manager.log")))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
