package jobspec

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/magekube/magekube/pkg/protocol"
)

func TestJobName(t *testing.T) {
	t.Parallel()
	block := &protocol.Request{Kind: protocol.KindBlock, BlockRunID: 42, PipelineRunID: 7}
	pipe := &protocol.Request{Kind: protocol.KindPipeline, PipelineRunID: 7}
	long := strings.Repeat("long-prefix-", 8)
	for _, tc := range []struct {
		name, uuid, prefix string
		req                *protocol.Request
		want               string
	}{
		{"mage defaults", "", "", block, "mage-data-prep-block-42"},
		{"pipeline", "c1", "etl", pipe, "c1-etl-pipeline-7"},
		{"first attempt keeps Mage's name", "", "", &protocol.Request{Kind: protocol.KindBlock, BlockRunID: 42, Attempt: 1}, "mage-data-prep-block-42"},
		{"retry attempt", "", "", &protocol.Request{Kind: protocol.KindBlock, BlockRunID: 42, Attempt: 3}, "mage-data-prep-block-42-a3"},
		{"uppercase gets a hash", "Prod", "ETL", block, "prod-etl-block-42-"},
		{"underscores", "mage", "daily_sync", block, "mage-daily-sync-block-42-"},
		{"unicode", "mage", "größe", block, "mage-gr-e-block-42-"},
		{"long is cut with hash", "mage", long, block, "mage-long-prefix-long-prefix-long-prefix-long-prefix-l"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := JobName(tc.uuid, tc.prefix, tc.req)
			if !strings.HasPrefix(got, tc.want) {
				t.Errorf("JobName = %q, want prefix %q", got, tc.want)
			}
			if errs := validation.IsDNS1123Label(got); len(errs) > 0 {
				t.Errorf("%q is not a DNS-1123 label: %v", got, errs)
			}
			if again := JobName(tc.uuid, tc.prefix, tc.req); again != got {
				t.Errorf("not deterministic: %q then %q", got, again)
			}
		})
	}
}

func TestDNSLabelKeepsDistinctInputsDistinct(t *testing.T) {
	t.Parallel()
	inputs := []string{"daily_sync", "daily-sync", "Daily-Sync", "daily sync", "daily--sync", "daily.sync",
		strings.Repeat("a", 70) + "1", strings.Repeat("a", 70) + "2", "", "---", "ü", "ö"}
	seen := map[string]string{}
	for _, in := range inputs {
		out := DNSLabel(in)
		if errs := validation.IsDNS1123Label(out); len(errs) > 0 {
			t.Errorf("DNSLabel(%q) = %q: %v", in, out, errs)
		}
		if prev, dup := seen[out]; dup {
			t.Errorf("DNSLabel(%q) and DNSLabel(%q) collide: %q", prev, in, out)
		}
		seen[out] = in
	}
}

func FuzzDNSLabel(f *testing.F) {
	f.Add("Mage_Cluster-ÜBER.block")
	f.Fuzz(func(t *testing.T, s string) {
		out := DNSLabel(s)
		if errs := validation.IsDNS1123Label(out); len(errs) > 0 {
			t.Fatalf("DNSLabel(%q) = %q: %v", s, out, errs)
		}
	})
}

func TestMageCommand(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		req  protocol.Request
		want string
	}{
		{"block", protocol.Request{Kind: "block", ProjectDir: "/home/src/p", PipelineUUID: "etl", BlockUUID: "load", BlockRunID: 42, PipelineRunID: 7, ExecutionPartition: "7/2026"},
			"/app/run_app.sh mage run /home/src/p etl --block-uuid load --executor-type local_python --execution-partition 7/2026 --block-run-id 42 --pipeline-run-id 7"},
		{"block without pipeline run", protocol.Request{Kind: "block", ProjectDir: "/p", PipelineUUID: "etl", BlockUUID: "load", BlockRunID: 1},
			"/app/run_app.sh mage run /p etl --block-uuid load --executor-type local_python --block-run-id 1"},
		{"pipeline", protocol.Request{Kind: "pipeline", ProjectDir: "/p", PipelineUUID: "etl", PipelineRunID: 7},
			"/app/run_app.sh mage run /p etl --executor-type local_python --pipeline-run-id 7"},
	} {
		if got := strings.Join(MageCommand(&tc.req), " "); got != tc.want {
			t.Errorf("%s:\ngot  %s\nwant %s", tc.name, got, tc.want)
		}
	}
}
