package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// Submit writes a request for the agent: validated, under a temporary
// name, then renamed into requests/, so the agent never reads a part.
func Submit(l Layout, data []byte) (*Request, error) {
	req, err := ParseRequest(data)
	if err != nil {
		return nil, fmt.Errorf("invalid request:\n%w", err)
	}
	if _, err := os.Stat(l.RunDir(req.ID)); err == nil {
		return nil, fmt.Errorf("run %s exists already (%s)", req.ID, l.RunDir(req.ID))
	}
	if err := os.MkdirAll(l.Requests(), 0o755); err != nil {
		return nil, err
	}
	if err := WriteFileAtomic(l.RequestPath(req.ID), data, 0o644); err != nil {
		return nil, err
	}
	return req, nil
}

// RequestCancel asks the agent to cancel a run.
func RequestCancel(l Layout, id string) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	if _, err := os.Stat(l.RunDir(id)); err != nil {
		if _, qerr := os.Stat(l.RequestPath(id)); qerr == nil {
			return fmt.Errorf("run %s is not claimed yet; remove %s to withdraw it", id, l.RequestPath(id))
		}
		return fmt.Errorf("no run %s: %w", id, err)
	}
	return WriteFileAtomic(l.RunFile(id, CancelFile), nil, 0o644)
}

// ReadStatus reads one run's status.
func ReadStatus(l Layout, id string) (Status, error) {
	var s Status
	err := ReadJSON(l.RunFile(id, StatusFile), &s)
	return s, err
}

// Statuses reads every run's status, oldest first. Runs whose status
// cannot be read are skipped.
func Statuses(l Layout) ([]Status, error) {
	entries, err := os.ReadDir(l.Runs())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Status
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		var s Status
		data, err := ReadFileSafe(filepath.Join(l.Runs(), e.Name(), StatusFile), MaxFileBytes)
		if err != nil || json.Unmarshal(data, &s) != nil {
			continue
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}
