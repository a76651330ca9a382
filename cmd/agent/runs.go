package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
	"unicode"

	"github.com/magekube/magekube/pkg/protocol"
)

// checkRoot refuses a --dir that is not an agent's directory, instead of
// showing an empty table for a typo.
func checkRoot(l protocol.Layout) error {
	for _, d := range []string{l.Requests(), l.Runs()} {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			return fmt.Errorf("--dir %s is not a magekube directory (no %s in it): give the agent's --dir as this container sees it (in the Mage pod: kubectl exec -c magekube-agent <pod> -- agent …)", l.Root, strings.TrimPrefix(d, l.Root+"/"))
		}
	}
	return nil
}

// queuedStatus is the status of a request no agent has claimed yet.
func queuedStatus(l protocol.Layout, id string) (protocol.Status, bool) {
	fi, err := os.Lstat(l.RequestPath(id))
	if err != nil || !fi.Mode().IsRegular() {
		return protocol.Status{}, false
	}
	return protocol.Status{APIVersion: protocol.APIVersion, ID: id, Phase: protocol.PhaseQueued,
		Message: "not claimed by an agent yet", CreatedAt: fi.ModTime().UTC(), UpdatedAt: fi.ModTime().UTC()}, true
}

// runStatus is one run's status, a request not claimed yet included.
func runStatus(l protocol.Layout, id string) (protocol.Status, error) {
	if err := protocol.ValidateID(id); err != nil {
		return protocol.Status{}, err
	}
	s, err := protocol.ReadStatus(l, id)
	if !errors.Is(err, fs.ErrNotExist) {
		return s, err
	}
	if q, ok := queuedStatus(l, id); ok {
		return q, nil
	}
	if fi, derr := os.Stat(l.RunDir(id)); derr == nil {
		return protocol.Status{ID: id, Phase: protocol.PhaseQueued, Message: "claimed; no status written yet", CreatedAt: fi.ModTime().UTC()}, nil
	}
	return protocol.Status{}, fmt.Errorf("no run %s under %s", id, l.Root)
}

// allStatuses is every run's status and every unclaimed request's,
// oldest first.
func allStatuses(l protocol.Layout) ([]protocol.Status, error) {
	runs, err := protocol.Statuses(l)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(l.Requests())
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		id, ok := protocol.RequestID(e.Name())
		if !ok || protocol.ValidateID(id) != nil {
			continue
		}
		if _, err := os.Lstat(l.RunDir(id)); err == nil {
			continue // claimed: its status is listed (or a duplicate the agent rejects)
		}
		if q, ok := queuedStatus(l, id); ok {
			runs = append(runs, q)
		}
	}
	sort.SliceStable(runs, func(i, j int) bool { return runs[i].CreatedAt.Before(runs[j].CreatedAt) })
	return runs, nil
}

// withdraw removes a request no agent has claimed; false when there is
// none to remove (claimed, or never there).
func withdraw(l protocol.Layout, id string) bool {
	return os.Remove(l.RequestPath(id)) == nil
}

// cell makes text safe for one table cell on a terminal: line breaks and
// tabs become spaces, other control characters (escape sequences
// included) are shown escaped.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			b.WriteByte(' ')
		case unicode.IsControl(r) || r == unicode.ReplacementChar:
			fmt.Fprintf(&b, "\\x%02x", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
