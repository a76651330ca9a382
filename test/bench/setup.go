package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/magekube/magekube/pkg/jobspec"
	"github.com/magekube/magekube/pkg/kube"
	"github.com/magekube/magekube/pkg/protocol"
	"github.com/magekube/magekube/test/cluster"
	"github.com/magekube/magekube/test/framework"
)

type bench struct {
	client kubernetes.Interface
	ns     string
	pod    *corev1.Pod
	layout protocol.Layout
	// project is the Mage project the runs are of (mageProject); empty
	// in the peer section, whose runs come from Mage's own.
	project string
	kubecfg string
	// auditLog is the API server's audit log (the peer section's cluster).
	auditLog string

	mu       sync.Mutex
	jobSeen  map[string]time.Time // run id → Job first seen by the bench's watch
	jobDone  map[string]bool      // run id → the Job has completed
	podOf    map[string]string    // run id → pod name
	keyOf    map[string]string    // run id → the run's key (its Job's UID)
	running  map[string]chan struct{}
	autoExit bool
	n        int
	creates  createTimes
	// profileDir receives profiles (-profile); empty: none.
	profileDir string
	// agentClient is the agent's client (production settings, the bench's
	// rate limit, create timing).
	agentClient kubernetes.Interface
	// stopAgent stops the agent serving the bench's run directory (see
	// useAgent).
	stopAgent func()
	stop      func()
}

// startBench starts a cluster with four kwok nodes, a Mage server pod in
// namespace ns with its run directory, the bench's watch, and the client
// the agent uses; the runs it requests are of project (mageProject). The
// returned func (also b.stop, and run on interrupt) stops all of it.
func startBench(ctx context.Context, binDir, profileDir, project, ns string, audit bool, interrupted <-chan os.Signal) (*bench, func(), error) {
	work := filepath.Join(cluster.Root, fmt.Sprintf("%s-%d", ns, os.Getpid()))
	c, err := cluster.Start(ctx, cluster.Options{BinDir: binDir, WorkDir: work, FakeNodes: 4, Audit: audit})
	if err != nil {
		return nil, nil, err
	}
	b := &bench{stopAgent: func() {}, profileDir: profileDir, project: project, kubecfg: c.Kubeconfig, auditLog: c.AuditLog, jobSeen: map[string]time.Time{}, jobDone: map[string]bool{}, podOf: map[string]string{}, keyOf: map[string]string{}, running: map[string]chan struct{}{}}
	var cleanups []func()
	b.stop = sync.OnceFunc(func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
		c.Stop()
	})
	done := make(chan struct{})
	cleanups = append(cleanups, func() { close(done) })
	go func() {
		select {
		case sig := <-interrupted:
			fmt.Fprintln(os.Stderr, "bench:", sig, "- stopping the cluster")
			b.stop()
			os.Exit(130)
		case <-done:
		}
	}()
	fail := func(err error) (*bench, func(), error) { b.stop(); return nil, nil, err }
	cfg, err := c.RESTConfig()
	if err != nil {
		return fail(err)
	}
	cfg.QPS, cfg.Burst = 500, 1000 // the bench's own client must not be the bottleneck
	if b.client, err = kubernetes.NewForConfig(cfg); err != nil {
		return fail(err)
	}
	if err := b.server(ctx, ns); err != nil {
		return fail(err)
	}
	cleanups = append(cleanups, func() { os.RemoveAll(b.layout.Root) })
	cleanups = append(cleanups, b.watch(ctx))
	// The agent under test gets its production client settings except a
	// rate limit sized for the bench.
	agentCfg, err := kube.Config(kube.Options{Kubeconfig: c.Kubeconfig, QPS: 200, Burst: 400})
	if err != nil {
		return fail(err)
	}
	agentCfg.Wrap(b.creates.wrap) // the agent's share and the API server's, per run
	if b.agentClient, err = kubernetes.NewForConfig(agentCfg); err != nil {
		return fail(err)
	}
	return b, b.stop, nil
}

// server makes a fresh Mage server pod in a new namespace, with its own
// run directory, the agent's from then on.
func (b *bench) server(ctx context.Context, ns string) error {
	if _, err := b.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	pod, err := framework.CreateServerPod(ctx, b.client, framework.PodOptions{Namespace: ns, MageImage: "mage:bench", AgentImage: "magekube/agent:bench", OnFakeNodes: true})
	if err != nil {
		return err
	}
	root, err := os.MkdirTemp("", "magekube-bench-runs")
	if err != nil {
		return err
	}
	b.ns, b.pod, b.layout = ns, pod, protocol.Layout{Root: root}
	return nil
}

// watch records when each Job is first seen and ends pods that go
// Running when autoExit is on (as a block that does nothing would).
func (b *bench) watch(ctx context.Context) func() {
	f := informers.NewSharedInformerFactoryWithOptions(b.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = jobspec.LabelRun }))
	onJob := func(obj any) {
		j := obj.(*batchv1.Job)
		now := time.Now()
		id := j.Labels[jobspec.LabelRun]
		b.mu.Lock()
		if _, ok := b.jobSeen[id]; !ok {
			b.jobSeen[id] = now
		}
		if j.Status.Succeeded > 0 {
			b.jobDone[id] = true
		}
		b.mu.Unlock()
	}
	_, _ = f.Batch().V1().Jobs().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: onJob, UpdateFunc: func(_, o any) { onJob(o) }})
	onPod := func(obj any) {
		p, ok := obj.(*corev1.Pod)
		if !ok || p.Status.Phase != corev1.PodRunning {
			return
		}
		id := p.Labels[jobspec.LabelRun]
		b.mu.Lock()
		_, known := b.podOf[id]
		b.podOf[id] = p.Name
		b.keyOf[id] = p.Labels[protocol.RunKeyLabel]
		ch := b.running[id]
		auto := b.autoExit
		b.mu.Unlock()
		if known || id == "" {
			return
		}
		if ch != nil {
			close(ch)
		}
		if auto {
			go b.end(ctx, id, p.Name, p.Labels[protocol.RunKeyLabel])
		}
	}
	_, _ = f.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: onPod, UpdateFunc: func(_, o any) { onPod(o) }})
	stop := make(chan struct{})
	f.Start(stop)
	f.WaitForCacheSync(stop)
	return func() { close(stop); f.Shutdown() }
}

// end plays the runner and the container: result.json with exit 0,
// sealed with the run's key (its Job's UID, as the pod's label gives it),
// then the pod's exit.
func (b *bench) end(ctx context.Context, id, pod, key string) {
	_ = b.endWith(ctx, id, pod, key, 0, 1)
}

// endWith ends a pod with exit code code: for a run of the agent (id set)
// first the runner's sealed result.json of this attempt, then the
// container's exit.
func (b *bench) endWith(ctx context.Context, id, pod, key string, code, attempt int) error {
	if id != "" {
		now := time.Now().UTC()
		res := protocol.Result{ExitCode: code, Reason: protocol.ReasonCompleted, StartedAt: now, FinishedAt: now, Attempt: attempt, Pod: pod}
		if code != 0 {
			res.Reason = protocol.ReasonError
		}
		res.Seal = protocol.SealResult(key, id, res)
		_ = protocol.WriteJSONAtomic(b.layout.RunFile(id, protocol.ResultFile), res)
	}
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:"%d"}}}`, cluster.ExitCodeAnnotation, code)
	_, err := b.client.CoreV1().Pods(b.ns).Patch(ctx, pod, types.MergePatchType, patch, metav1.PatchOptions{})
	return err
}

// useAgent stops the agent serving the run directory, if any, and starts
// one with room for maxInflight runs: in this process (its creates timed,
// see createTimes), or as its own process, as deployed (nothing of the
// bench's own work shares its Go scheduler).
func (b *bench) useAgent(inProcess bool, maxInflight int) error {
	b.stopAgent()
	b.stopAgent = func() {}
	if inProcess {
		stop, err := b.startAgent(b.agentClient, maxInflight)
		if err != nil {
			return err
		}
		b.stopAgent = stop
		return nil
	}
	p, err := b.startAgentProcess(maxInflight)
	if err != nil {
		return err
	}
	b.stopAgent = p.stop
	return nil
}

func (b *bench) startAgent(client kubernetes.Interface, maxInflight int) (func(), error) {
	o := framework.AgentOptions(b.layout, client, b.pod, b.project, "bench")
	o.MaxInflight, o.Rescan = maxInflight, 30*time.Second
	o.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	stop, err := framework.StartAgent(o, time.Minute)
	if err != nil {
		return nil, err
	}
	return func() { _ = stop() }, nil
}

func (b *bench) builder() jobspec.Builder {
	return framework.AgentOptions(b.layout, b.client, b.pod, b.project, "bench").Builder
}

// submit writes n requests at once and returns their ids and times.
func (b *bench) submit(n int) ([]string, []time.Time) {
	ids, at := make([]string, n), make([]time.Time, n)
	var wg sync.WaitGroup
	for i := range n {
		b.n++
		ids[i] = "r" + strconv.Itoa(b.n)
		req := b.request(ids[i], b.n)
		wg.Go(func() {
			tmp := filepath.Join(b.layout.Requests(), "."+ids[i]+".tmp")
			_ = os.WriteFile(tmp, req, 0o644)
			at[i] = time.Now()
			_ = os.Rename(tmp, b.layout.RequestPath(ids[i]))
		})
	}
	wg.Wait()
	return ids, at
}

// projectBlocks is how many blocks the bench's pipeline has; runs take
// them in turn.
const projectBlocks = 20

// mageProject makes the project the bench's runs are of with the pinned
// mage-ai (integrations/mage/bench_project.py): its metadata.yaml files
// as Mage writes them, a pipeline etl of projectBlocks blocks. The
// returned func removes it.
func mageProject(repo, python string) (string, func(), error) {
	if python == "" {
		return "", nil, errors.New("no -mage-python for the bench's Mage project (hack/bench.sh sets MAGEKUBE_MAGE_PYTHON from hack/mage-venv.sh)")
	}
	parent, err := os.MkdirTemp("", "magekube-bench-project")
	if err != nil {
		return "", nil, err
	}
	remove := func() { os.RemoveAll(parent) }
	dir := filepath.Join(parent, "project")
	cmd := exec.Command(python, filepath.Join(repo, "integrations", "mage", "bench_project.py"), "--repo", dir, "--blocks", strconv.Itoa(projectBlocks))
	if out, err := cmd.CombinedOutput(); err != nil {
		remove()
		return "", nil, fmt.Errorf("bench_project.py: %v\n%s", err, out)
	}
	return dir, remove, nil
}

// request is run id's request: block run n of the bench's pipeline, its
// blocks in turn.
func (b *bench) request(id string, n int) []byte {
	return fmt.Appendf(nil, `{"apiVersion":"magekube/v1","id":%q,"kind":"block","project_dir":%q,"pipeline_uuid":"etl","block_uuid":"block_%d","block_run_id":%d}`,
		id, b.project, n%projectBlocks, n)
}
