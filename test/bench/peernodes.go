package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/magekube/magekube/pkg/protocol"
	"github.com/magekube/magekube/test/framework"
)

// The peer section on real nodes: a few block runs through each side on
// a kind cluster (the e2e suite's, from the images built here), where
// every Job's pod runs the block for real: Mage's own `mage run` in the
// Mage image of the pinned release, against a Mage database both sides'
// pods share with the executor on the volume every node mounts (at the
// same path, so every path in Mage's command holds in the pods). Mage's
// executor and the trigger run on this machine, as in the kwok part; the
// agent runs as its own process. The server pods the Jobs inherit from
// are never scheduled (a scheduling gate): only their specs are read.
// kind's API server keeps no audit log, so API requests per run are the
// kwok part's only.

// peerNodesGate keeps the server pods from running.
const peerNodesGate = "magekube.io/bench-spec-only"

// peerNodesSection runs n block runs through Mage's executor, then n
// through magekube, on a kind cluster, and adds their rows.
func peerNodesSection(ctx context.Context, repo, python string, n int, interrupted <-chan os.Signal, rep *report) error {
	name := fmt.Sprintf("mk-bench-%d", os.Getpid())
	work, err := os.MkdirTemp("", name+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	progress(fmt.Sprintf("peer on nodes: kind cluster %s with the e2e suite's images (the first time builds the node and Mage images, about 10 min)", name))
	e, err := framework.StartKind(ctx, framework.KindOptions{Name: name, Work: work,
		Kubeconfig: filepath.Join(work, "kubeconfig"), SharedDir: filepath.Join(os.TempDir(), "magekube-kind-"+name)})
	if err != nil {
		return err
	}
	teardown := sync.OnceFunc(e.Teardown)
	defer teardown()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case sig := <-interrupted:
			fmt.Fprintln(os.Stderr, "bench:", sig, "- deleting kind cluster", name)
			teardown()
			os.Exit(130)
		case <-done:
		}
	}()
	ns := "bench-peer-nodes"
	if _, err := e.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if err := e.WaitServiceAccount(ctx, ns); err != nil {
		return err
	}
	p := &peerPods{b: &bench{client: e.Client, ns: ns}, real: true, fail: map[int]bool{}, retry: map[int]bool{},
		seen: map[string]time.Time{}, ended: map[string]time.Time{}, attempts: map[string]int{}, done: map[string]bool{}, runOf: map[string]string{}}
	defer p.start(ctx)()
	sides := map[string]peerSide{}
	for i, mode := range []string{"mage", "magekube"} {
		dir := filepath.Join(e.SharedDir, mode)
		if err := os.MkdirAll(dir, 0o777); err != nil {
			return err
		}
		if err := os.Chmod(dir, 0o777); err != nil { // the Jobs' containers write here
			return err
		}
		b := &bench{client: e.Client, ns: ns, kubecfg: e.Kubeconfig, layout: protocol.Layout{Root: filepath.Join(dir, ".magekube")}}
		if b.pod, err = e.Client.CoreV1().Pods(ns).Create(ctx, peerServerPod(e, ns, mode, dir), metav1.CreateOptions{}); err != nil {
			return err
		}
		var agent *agentProcess
		if mode == "magekube" {
			if agent, err = b.startAgentProcess(n); err != nil {
				return err
			}
		}
		first := i*n + 1
		progress(fmt.Sprintf("peer on nodes: %d block runs through %s, each Job running `mage run`", n, mode))
		side, err := b.peerBatch(ctx, p, repo, python, mode, first, first+n-1, agent, dir)
		if agent != nil {
			agent.stop()
		}
		if err != nil {
			return err
		}
		for id, ok := range side.outcomes {
			if !ok {
				return fmt.Errorf("peer on nodes: %s block run %d failed (see the lines above)", mode, id)
			}
		}
		sides[mode] = side
	}
	peerNodeRows(rep, n, sides["mage"], sides["magekube"])
	return nil
}

// peerServerPod is a Mage server pod whose Mage container names the
// side's project and database, with the shared volume at its own path.
func peerServerPod(e *framework.Env, ns, mode, dir string) *corev1.Pod {
	pod := framework.ServerPod(framework.PodOptions{Name: "mage-peer-" + mode, Namespace: ns, MageImage: e.MageImage, AgentImage: e.AgentImage,
		Env: []corev1.EnvVar{
			{Name: "USER_CODE_PATH", Value: filepath.Join(dir, "repo")},
			{Name: "MAGE_DATABASE_CONNECTION_URL", Value: "sqlite:///" + filepath.Join(dir, "mage.db")},
			{Name: "MAGE_DATA_DIR", Value: filepath.Join(dir, "mage_data")},
		}})
	pod.Spec.Volumes = []corev1.Volume{{Name: "mage-fs", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: e.SharedDir}}}}
	for i := range pod.Spec.Containers {
		pod.Spec.Containers[i].VolumeMounts = []corev1.VolumeMount{{Name: "mage-fs", MountPath: e.SharedDir}}
	}
	pod.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: peerNodesGate}}
	return pod
}

// peerNodeRows adds the real-node rows: the same latencies as the kwok
// part; CPU and RSS of the executor process.
func peerNodeRows(rep *report, n int, mage, mk peerSide) {
	row := sideBySide(rep, fmt.Sprintf("peer on kind nodes, %d block runs running `mage run`", n))
	row("executor call → Job created, p50", ms(pct(mage.created, 50)), ms(pct(mk.created, 50)), "ms")
	row("executor call → Job created, max", ms(pct(mage.created, 100)), ms(pct(mk.created, 100)), "ms")
	row("the block's last log line → executor returned, p50", ms(pct(mage.notice, 50)), ms(pct(mk.notice, 50)), "ms")
	row("the block's last log line → executor returned, max", ms(pct(mage.notice, 100)), ms(pct(mk.notice, 100)), "ms")
	rep.table = append(rep.table, [2]string{"peer on kind nodes: magekube, the block's exit (the runner's result.json) → executor returned, p50 / max (ms); the rest of the row above is `mage run` exiting after its last line",
		fmt.Sprintf("%.4g / %.4g", ms(pct(mk.exitNotice, 50)), ms(pct(mk.exitNotice, 100)))})
	row("executor process CPU per run", 1000*mage.cpuS/float64(n), 1000*mk.cpuS/float64(n), "ms")
	row("executor process peak RSS", round(mage.peakRSSMiB, 1), round(mk.peakRSSMiB, 1), "MiB")
	rep.res["nodes_mage_executor_notice_ms"] = ms(pct(mage.notice, 50))
	rep.res["nodes_magekube_notice_ms"] = ms(pct(mk.notice, 50))
	rep.res["nodes_mage_executor_created_ms"] = ms(pct(mage.created, 50))
	rep.res["nodes_magekube_created_ms"] = ms(pct(mk.created, 50))
	rep.res["nodes_magekube_exit_notice_ms"] = ms(pct(mk.exitNotice, 50))
}
