// Package monitoring holds no code: its test checks that the Grafana
// dashboard and the Prometheus alert rules name only metrics the agent
// serves, and that the stuck-pending alert knows every reason a pod waits
// for. promtool checks the rules themselves (hack/test-monitoring.sh).
package monitoring

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/magekube/magekube/pkg/protocol"
	"github.com/magekube/magekube/pkg/telemetry/metrics"
)

// served is every metric family the agent's registry serves once each
// metric has seen a value (client-go's hooks included, through a real
// request).
func served(t *testing.T) map[string]bool {
	t.Helper()
	m := metrics.NewMetrics("test")
	m.ObserveKubernetesAPI()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"major":"1","minor":"34","gitVersion":"v1.34.4"}`))
	}))
	defer srv.Close()
	c, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Discovery().ServerVersion(); err != nil {
		t.Fatal(err)
	}
	m.RunFinished("Succeeded", protocol.ReasonCompleted, time.Second)
	m.Dispatched(time.Millisecond)
	m.Noticed(time.Millisecond)
	m.SetLoad(1, 1)
	m.Pending(protocol.ReasonUnschedulable, 1)
	m.TraceExported(nil)
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, f := range families {
		out[f.GetName()] = true
	}
	return out
}

var metricName = regexp.MustCompile(`\b(magekube_[a-z_]+|process_[a-z_]+)\b`)

// named lists the metric families an expression names (a histogram's
// _bucket, _sum and _count series belong to its family).
func named(expr string) []string {
	var out []string
	for _, n := range metricName.FindAllString(expr, -1) {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if strings.HasPrefix(n, "magekube_") && strings.HasSuffix(n, suffix) {
				n = strings.TrimSuffix(n, suffix)
			}
		}
		out = append(out, n)
	}
	return out
}

type rules struct {
	Groups []struct {
		Rules []struct {
			Alert string `json:"alert"`
			Expr  string `json:"expr"`
		} `json:"rules"`
	} `json:"groups"`
}

func readRules(t *testing.T) rules {
	t.Helper()
	data, err := os.ReadFile("alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var r rules
	if err := yaml.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestEveryMetricNamedIsServed(t *testing.T) {
	have := served(t)
	var exprs []string
	for _, g := range readRules(t).Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	data, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			exprs = append(exprs, q.Expr)
		}
	}
	n := 0
	for _, e := range exprs {
		for _, name := range named(e) {
			n++
			if !have[name] {
				t.Errorf("%s is not served by the agent (in %q)", name, e)
			}
		}
	}
	if n < 20 {
		t.Errorf("only %d metric references found; the parsing is broken", n)
	}
}

// TestStuckPendingKnowsEveryBlockingReason: the alert's reasons are the
// vocabulary's reasons a pod cannot start for.
func TestStuckPendingKnowsEveryBlockingReason(t *testing.T) {
	var expr string
	for _, g := range readRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert == "MagekubeRunsStuckPending" {
				expr = r.Expr
			}
		}
	}
	m := regexp.MustCompile(`reason=~"([^"]+)"`).FindStringSubmatch(expr)
	if m == nil {
		t.Fatalf("MagekubeRunsStuckPending has no reason matcher: %q", expr)
	}
	got := strings.Split(m[1], "|")
	want := []string{protocol.ReasonUnschedulable}
	for _, r := range protocol.Reasons() {
		if r.Blocks {
			want = append(want, r.Name)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("alert reasons %v, want %v (protocol.Reasons with Blocks, and Unschedulable)", got, want)
	}
}

// TestPrometheusRuleMatchesAlerts: the Prometheus Operator's
// PrometheusRule holds exactly the groups of alerts.yaml, which promtool
// checks; the PodMonitor labels its targets as the rules expect.
func TestPrometheusRuleMatchesAlerts(t *testing.T) {
	t.Parallel()
	type relabel struct {
		TargetLabel string `json:"targetLabel"`
		Replacement string `json:"replacement"`
	}
	var plain struct {
		Groups any `json:"groups"`
	}
	var rule struct {
		Kind string `json:"kind"`
		Spec struct {
			Groups any `json:"groups"`
		} `json:"spec"`
	}
	var monitor struct {
		Spec struct {
			PodMetricsEndpoints []struct {
				Port        string    `json:"port"`
				Relabelings []relabel `json:"relabelings"`
			} `json:"podMetricsEndpoints"`
		} `json:"spec"`
	}
	for path, v := range map[string]any{"alerts.yaml": &plain, "prometheus-operator/prometheusrule.yaml": &rule, "prometheus-operator/podmonitor.yaml": &monitor} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(data, v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	a, _ := json.Marshal(plain.Groups)
	b, _ := json.Marshal(rule.Spec.Groups)
	if rule.Kind != "PrometheusRule" || string(a) != string(b) {
		t.Errorf("the PrometheusRule's groups differ from alerts.yaml's")
	}
	eps := monitor.Spec.PodMetricsEndpoints
	if len(eps) != 1 || eps[0].Port != "metrics" || !slices.Contains(eps[0].Relabelings, relabel{TargetLabel: "job", Replacement: "magekube-agent"}) {
		t.Errorf("the PodMonitor does not scrape port metrics as job magekube-agent: %+v", eps)
	}
}
