package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetricsLint(t *testing.T) {
	m := NewMetrics("test")
	m.RunFinished("Failed", "OOMKilled", time.Second)
	m.Dispatched(3 * time.Millisecond)
	m.Noticed(time.Millisecond)
	m.SetLoad(2, 5)
	m.TraceExported(nil)
	problems, err := testutil.GatherAndLint(m.Registry)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	if n := testutil.ToFloat64(m.runs.WithLabelValues("Failed", "OOMKilled")); n != 1 {
		t.Errorf("runs_total = %v", n)
	}
	var nilMetrics *Metrics
	nilMetrics.RunFinished("Succeeded", "", time.Second) // must not panic
}
