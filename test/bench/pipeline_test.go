package main

import (
	"testing"
)

// TestPipelineRows: TestPipelineWallTime's results become the JSON keys
// the README and the issue name: the medians per executor, the requests
// per pipeline run, the load run's exactly-once and the gaps' p99.
func TestPipelineRows(t *testing.T) {
	t.Parallel()
	data := []byte(`{"runs_each":2,"rows":["| magekube | chain10 | 1 | 45.2 |"],
		"wall_s/mage/chain10":[100.7,99.3],"wall_s/magekube/chain10":[45.2,44.8],"wall_s/magekube-off/chain10":[110.2],
		"wall_s/mage/fanout":[39.7],"wall_s/magekube/fanout":[23.8],"wall_s/magekube-off/fanout":[50.1],
		"requests/mage/chain10":[69,71],"requests/magekube/chain10":[20,20],
		"agent_gaps_ms/magekube/chain10":[300,310,320],"agent_gaps_ms/magekube/fanout":[900],
		"load_runs":50,"load_exactly_once":true,"load_span_s":600.5,"load_wall_s":[500,520,580],"load_agent_gaps_ms":[500,3500]}`)
	rep := newReport()
	if err := pipelineRows(data, rep); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]any{
		"pipeline_chain10_wall_s_mage": 100.0, "pipeline_chain10_wall_s_magekube": 45.0, "pipeline_chain10_wall_s_magekube_off": 110.2,
		"pipeline_fanout_wall_s_mage": 39.7, "pipeline_fanout_wall_s_magekube": 23.8,
		"pipeline_chain10_requests_mage": 70.0, "pipeline_chain10_requests_magekube": 20.0,
		"pipeline_gap_p99_ms": 900.0, "pipeline_exactly_once": true, "pipeline_load_wall_s_p50": 520.0, "pipeline_load_gap_p99_ms": 3500.0,
	} {
		if got := rep.res[key]; got != want {
			t.Errorf("%s = %v (%T), want %v", key, got, got, want)
		}
	}
	if _, ok := rep.res["pipeline_fanout_requests_mage"]; ok {
		t.Error("a requests key without figures (no audit log)")
	}
}
