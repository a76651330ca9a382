package dispatch

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/magekube/magekube/pkg/protocol"
	"github.com/magekube/magekube/pkg/share"
)

// volume is the agent's directories on the shared volume, opened once at
// start, a link never followed (share.Dir): every later access is relative
// to them, so no link or rename a writer of the volume plants can send the
// agent's reads, renames or removals anywhere else. A directory moved away
// stays the one the agent opened.
type volume struct {
	root, requests, runs, rejected, squatted, agent *share.Dir
}

// openVolume opens (making what is missing) the agent's directories under
// root; any of them that is a link or not a directory stops the agent.
func openVolume(l protocol.Layout) (*volume, error) {
	if err := os.MkdirAll(l.Root, 0o755); err != nil {
		return nil, fmt.Errorf("prepare %s: %w", l.Root, err)
	}
	root, err := share.OpenDir(l.Root)
	if err != nil {
		return nil, fmt.Errorf("open the agent's directory: %w", err)
	}
	v := &volume{root: root}
	steps := []struct {
		dst    **share.Dir
		parent **share.Dir
		name   string
	}{
		{&v.requests, &v.root, protocol.RequestsDir},
		{&v.runs, &v.root, protocol.RunsDir},
		{&v.agent, &v.root, protocol.AgentDir},
		{&v.rejected, &v.requests, rejectedDir},
		{&v.squatted, &v.runs, squattedDir},
	}
	for _, s := range steps {
		d, err := (*s.parent).MakeDir(s.name, 0o755)
		if err != nil {
			v.close()
			return nil, fmt.Errorf("prepare the agent's directory: %w", err)
		}
		*s.dst = d
	}
	return v, nil
}

func (v *volume) close() {
	for _, d := range []*share.Dir{v.root, v.requests, v.runs, v.rejected, v.squatted, v.agent} {
		if d != nil {
			d.Close()
		}
	}
}

// runDir opens the directory of run id; a link there is an error.
func (v *volume) runDir(id string) (*share.Dir, error) { return v.runs.Dir(id) }

// readRunFile reads a file of run id (regular, capped, no link followed).
func (v *volume) readRunFile(id, name string, max int64) ([]byte, fs.FileInfo, error) {
	d, err := v.runDir(id)
	if err != nil {
		return nil, nil, err
	}
	defer d.Close()
	return d.ReadFile(name, max)
}

// readRunJSON decodes a JSON file of run id into out.
func (v *volume) readRunJSON(id, name string, out any) error {
	data, _, err := v.readRunFile(id, name, protocol.MaxFileBytes)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode %s/%s/%s: %w", v.runs.Path(), id, name, err)
	}
	return nil
}

// writeRunJSON replaces a JSON file of run id (durable: fsynced).
func (v *volume) writeRunJSON(id, name string, val any, durable bool) error {
	data, err := json.MarshalIndent(val, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s of run %s: %w", name, id, err)
	}
	d, err := v.runDir(id)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.WriteFile(name, append(data, '\n'), 0o644, durable)
}

// runHas reports whether name exists in run id's directory (a link
// counts: it is there, and it is never followed).
func (v *volume) runHas(id, name string) bool {
	d, err := v.runDir(id)
	if err != nil {
		return false
	}
	defer d.Close()
	_, err = d.Lstat(name)
	return err == nil
}

// claim takes request file name for run id: mkdir runs/<id> is the atomic
// step (only one succeeds, also on NFS), then the request moves into it.
// protocol.ErrClaimed when the run directory exists.
func (v *volume) claim(name, id string) error {
	if err := v.runs.Mkdir(id, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return protocol.ErrClaimed
		}
		return fmt.Errorf("claim %s: %w", id, err)
	}
	return v.moveRequest(name, id)
}

// moveRequest moves requests/<name> into run id's directory.
func (v *volume) moveRequest(name, id string) error {
	d, err := v.runDir(id)
	if err != nil {
		return fmt.Errorf("claim %s: %w", id, err)
	}
	defer d.Close()
	if err := v.requests.Rename(name, d, protocol.RequestFile); err != nil {
		return fmt.Errorf("claim %s: move request: %w", id, err)
	}
	return nil
}

// shareRunDir lets the run's Job write its run directory (log,
// result.json, spans) whatever user it runs as, while no other user can
// remove or replace the agent's status.json in it: with an fsGroup the
// directory becomes that group's, setgid, group-writable and sticky
// (03775), the way Kubernetes shares a volume with a pod; without one
// (or when the agent is not in the group), writable by all and sticky
// (01777).
func (v *volume) shareRunDir(id string, fsGroup *int64) error {
	d, err := v.runDir(id)
	if err != nil {
		return err
	}
	defer d.Close()
	if fsGroup != nil && d.Chgrp(int(*fsGroup)) == nil {
		return d.Chmod(0o775 | fs.ModeSetgid | fs.ModeSticky)
	}
	return d.Chmod(0o777 | fs.ModeSticky)
}
