package dispatch

import (
	"testing"

	"github.com/magekube/magekube/pkg/protocol"
	"github.com/magekube/magekube/pkg/telemetry/metrics"
)

// TestPendingGauge: a run counts under the reason it waits for, moves
// with it, and leaves the gauge when it starts or ends.
func TestPendingGauge(t *testing.T) {
	m := metrics.NewMetrics("test")
	a := &Agent{o: Options{Metrics: m}}
	r := &run{}
	gauge := func(reason string) float64 {
		mfs, err := m.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "magekube_runs_pending" {
				continue
			}
			for _, metric := range mf.GetMetric() {
				if metric.GetLabel()[0].GetValue() == reason {
					return metric.GetGauge().GetValue()
				}
			}
		}
		return 0
	}
	for _, step := range []struct {
		phase  protocol.Phase
		reason string
		want   map[string]float64
	}{
		{protocol.PhasePending, protocol.ReasonUnschedulable, map[string]float64{"Unschedulable": 1}},
		{protocol.PhasePending, protocol.ReasonImagePullBackOff, map[string]float64{"Unschedulable": 0, "ImagePullBackOff": 1}},
		{protocol.PhaseRunning, "", map[string]float64{"ImagePullBackOff": 0}},
		{protocol.PhasePending, "", map[string]float64{"Pending": 1}},
		{protocol.PhaseFailed, protocol.ReasonStartTimeout, map[string]float64{"Pending": 0}},
	} {
		r.status.Phase, r.status.Reason = step.phase, step.reason
		a.countPending(r)
		for reason, want := range step.want {
			if got := gauge(reason); got != want {
				t.Errorf("after %s/%s: pending{%s} = %v, want %v", step.phase, step.reason, reason, got, want)
			}
		}
	}
}
