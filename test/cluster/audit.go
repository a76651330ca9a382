package cluster

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// AuditEvent is what the bench and the e2e suite read of one line of an
// API server's audit log (AuditPolicy: metadata, JSON).
type AuditEvent struct {
	UserAgent string    `json:"userAgent"`
	Received  time.Time `json:"requestReceivedTimestamp"`
	Verb      string    `json:"verb"`
	User      struct {
		Username string `json:"username"`
	} `json:"user"`
	Object struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
	} `json:"objectRef"`
}

// What names the request: its verb and resource, with the subresource
// ("create events", "get pods/log").
func (e AuditEvent) What() string {
	what := e.Verb + " " + e.Object.Resource
	if e.Object.Subresource != "" {
		what += "/" + e.Object.Subresource
	}
	return what
}

// CountRequests counts the requests of the audit log at path received
// between from and to that keep accepts, in all and by What.
func CountRequests(path string, from, to time.Time, keep func(AuditEvent) bool) (int, map[string]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, nil, fmt.Errorf("audit log: %w", err)
	}
	defer f.Close()
	n, by := 0, map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var ev AuditEvent
		if json.Unmarshal(sc.Bytes(), &ev) != nil || ev.Received.Before(from) || ev.Received.After(to) || !keep(ev) {
			continue
		}
		n++
		by[ev.What()]++
	}
	if err := sc.Err(); err != nil {
		return 0, nil, fmt.Errorf("audit log %s: %w", path, err)
	}
	return n, by, nil
}

// PerRun formats requests by What as requests per run (two decimals at
// most), the most first: "get jobs 3.79, create jobs 1".
func PerRun(by map[string]int, runs int) string {
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return by[keys[i]] > by[keys[j]] || by[keys[i]] == by[keys[j]] && keys[i] < keys[j]
	})
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		per := math.Round(100*float64(by[k])/float64(max(runs, 1))) / 100
		parts = append(parts, k+" "+strconv.FormatFloat(per, 'f', -1, 64))
	}
	return strings.Join(parts, ", ")
}
