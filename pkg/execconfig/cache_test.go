package execconfig

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// countingFS is the project directory on disk, counting the reads of
// each file.
type countingFS struct {
	fs.StatFS
	dir   string
	reads sync.Map // name → *atomic.Int64
}

func newCountingFS(dir string) *countingFS {
	return &countingFS{StatFS: os.DirFS(dir).(fs.StatFS), dir: dir}
}

func (c *countingFS) ReadFile(name string) ([]byte, error) {
	n, _ := c.reads.LoadOrStore(name, new(atomic.Int64))
	n.(*atomic.Int64).Add(1)
	return os.ReadFile(filepath.Join(c.dir, name))
}

func (c *countingFS) count(name string) int64 {
	n, ok := c.reads.Load(name)
	if !ok {
		return 0
	}
	return n.(*atomic.Int64).Load()
}

// magePipeline is a pipeline's metadata.yaml the way Mage writes it (the
// fields mage-ai 0.9.80 saves for each block), with blocks chained one
// after the other; block i sets a namespace of its own.
func magePipeline(blocks int) string {
	var sb strings.Builder
	sb.WriteString("blocks:\n")
	for i := range blocks {
		up, down := "[]", "[]"
		if i > 0 {
			up = fmt.Sprintf("\n  - block_%d", i-1)
		}
		if i < blocks-1 {
			down = fmt.Sprintf("\n  - block_%d", i+1)
		}
		fmt.Fprintf(&sb, `- all_upstream_blocks_executed: %t
  color: null
  configuration: {}
  downstream_blocks: %s
  executor_config:
    namespace: ns-%d
  executor_type: k8s
  has_callback: false
  language: python
  name: block_%d
  retry_config: null
  status: not_executed
  timeout: null
  type: transformer
  upstream_blocks: %s
  uuid: block_%d
`, i == 0, down, i, i, up, i)
	}
	sb.WriteString(`cache_block_output_in_memory: false
callbacks: []
concurrency_config: {}
conditionals: []
created_at: '2026-11-29 20:32:02.902625+00:00'
data_integration: null
description: null
executor_config:
  job_name_prefix: etl
executor_count: 1
executor_type: k8s
extensions: {}
name: etl
notification_config: {}
retry_config: {}
run_pipeline_in_one_process: false
settings:
  triggers: null
spark_config: {}
tags: []
type: python
uuid: etl
widgets: []
`)
	return sb.String()
}

func writeProject(t testing.TB, dir, pipeline string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "pipelines", "etl"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ProjectFile), []byte("project_type: standalone\nk8s_executor_config:\n  service_account_name: mage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, PipelineFile("etl")), []byte(pipeline), 0o644); err != nil {
		t.Fatal(err)
	}
}

// settled is a cache whose clock runs an hour ahead: every file on disk
// is older than its settle time.
func settled() *Cache {
	c := NewCache()
	c.now = func() time.Time { return time.Now().Add(time.Hour) }
	return c
}

func TestCacheKeepsUnchangedFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeProject(t, dir, magePipeline(20))
	fsys, cache := newCountingFS(dir), settled()
	want, err := Levels(os.DirFS(dir), nil, "etl", "block_7", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		got, err := Levels(fsys, cache, "etl", "block_7", nil)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("read %d: levels (-uncached +cached):\n%s", i, diff)
		}
	}
	if n := fsys.count(PipelineFile("etl")); n != 1 {
		t.Errorf("pipeline file read %d times, want once", n)
	}
	cfg, err := Resolve(want, Vars{Env: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Namespace != "ns-7" || cfg.JobNamePrefix != "etl" || cfg.ServiceAccountName != "mage" {
		t.Errorf("resolved %+v", cfg)
	}
}

// TestCacheSeesChanges: a changed file is read again, whether replaced
// (a new inode) or rewritten in place at the same size; a file that has
// not settled is read every time.
func TestCacheSeesChanges(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeProject(t, dir, magePipeline(3))
	pipeline := filepath.Join(dir, PipelineFile("etl"))
	fsys, cache := newCountingFS(dir), NewCache()
	cache.settle = 50 * time.Millisecond // a few ticks of the file system's clock
	namespace := func() string {
		t.Helper()
		levels, err := Levels(fsys, cache, "etl", "block_1", nil)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := Resolve(levels, Vars{Env: noEnv})
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Namespace
	}
	reads := func() int64 { return fsys.count(PipelineFile("etl")) }

	namespace()
	namespace()
	if reads() != 2 {
		t.Errorf("a file written just now: %d reads of two, want it read each time", reads())
	}
	time.Sleep(2 * cache.settle)
	namespace()
	namespace()
	if reads() != 3 {
		t.Errorf("a settled file: %d reads, want 3 (kept after the first)", reads())
	}

	// In place, same size: only the times tell.
	time.Sleep(2 * cache.settle)
	if err := os.WriteFile(pipeline, []byte(strings.Replace(magePipeline(3), "ns-1", "ns-x", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := namespace(); got != "ns-x" {
		t.Errorf("rewritten in place: namespace %q, want ns-x", got)
	}

	// Replaced by a rename, as editors and Mage's own writes do.
	time.Sleep(2 * cache.settle)
	tmp := pipeline + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Replace(magePipeline(3), "ns-1", "renamed", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, pipeline); err != nil {
		t.Fatal(err)
	}
	if got := namespace(); got != "renamed" {
		t.Errorf("replaced: namespace %q, want renamed", got)
	}

	// Removed: the level is empty again, and a bad file is an error.
	if err := os.Remove(pipeline); err != nil {
		t.Fatal(err)
	}
	if got := namespace(); got != "" {
		t.Errorf("removed: namespace %q, want none", got)
	}
	if err := os.WriteFile(pipeline, []byte("executor_config: [1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Levels(fsys, cache, "etl", "block_1", nil); err == nil || !strings.Contains(err.Error(), "pipelines/etl/metadata.yaml: not valid YAML") {
		t.Errorf("malformed: error %v", err)
	}
}

// TestCacheBounds: past its bytes the cache evicts the least recently
// used file, and never keeps a file over cacheMaxFile.
func TestCacheBounds(t *testing.T) {
	t.Parallel()
	c := NewCache()
	id := func(ino uint64, size int64) fileID { return fileID{fileKey: fileKey{dev: 1, ino: ino}, size: size} }
	doc := map[string]any{}
	c.put(id(1, 100), doc)
	for ino := uint64(2); ino <= 1000; ino++ {
		c.put(id(ino, 100), doc)
		c.get(id(1, 100)) // in use all along
	}
	if c.bytes > cacheMaxBytes || int64(len(c.files))*cacheMinCost != c.bytes {
		t.Errorf("%d files, %d bytes; the bound is %d", len(c.files), c.bytes, cacheMaxBytes)
	}
	if _, ok := c.get(id(1, 100)); !ok {
		t.Error("the file used all along was evicted")
	}
	if _, ok := c.get(id(2, 100)); ok {
		t.Error("the least recently used file was kept")
	}
	c.put(id(5000, cacheMaxFile+1), doc)
	if _, ok := c.get(id(5000, cacheMaxFile+1)); ok {
		t.Error("a file over cacheMaxFile was kept")
	}
	c.put(id(1, 200), doc) // the same file, changed
	if _, ok := c.get(id(1, 100)); ok {
		t.Error("a changed file's old content was kept")
	}
}

// TestCacheConcurrentRuns: the agent's intake workers resolve runs of
// one pipeline at once (run under -race).
func TestCacheConcurrentRuns(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeProject(t, dir, magePipeline(8))
	cache := settled()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for range 20 {
				levels, err := Levels(os.DirFS(dir), cache, "etl", fmt.Sprintf("block_%d", w), nil)
				if err == nil {
					var cfg *Config
					if cfg, err = Resolve(levels, Vars{Env: noEnv}); err == nil && cfg.Namespace != fmt.Sprintf("ns-%d", w) {
						err = fmt.Errorf("namespace %q", cfg.Namespace)
					}
				}
				if err != nil {
					t.Errorf("block_%d: %v", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkLevels reads the levels of one block of a 20-block Mage
// pipeline, as the agent does for each run: parsed each time, and kept
// in a Cache. go test -bench Levels -benchmem ./pkg/execconfig
func BenchmarkLevels(b *testing.B) {
	dir := b.TempDir()
	writeProject(b, dir, magePipeline(20))
	b.Logf("pipeline metadata.yaml: %d bytes", len(magePipeline(20)))
	for _, bc := range []struct {
		name  string
		cache *Cache
	}{{"parsed", nil}, {"cached", settled()}} {
		b.Run(bc.name, func(b *testing.B) {
			fsys := os.DirFS(dir)
			for b.Loop() {
				if _, err := Levels(fsys, bc.cache, "etl", "block_7", nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
