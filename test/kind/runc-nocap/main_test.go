package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestSpecFile(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--root", "/run/runc", "--log=/l", "--systemd-cgroup", "create", "--bundle", "/b", "id"}, "/b/config.json"},
		{[]string{"run", "-b=/x", "id"}, "/x/config.json"},
		{[]string{"create", "id"}, "config.json"},
		{[]string{"--debug", "exec", "--process", "/tmp/p.json", "id"}, "/tmp/p.json"},
		{[]string{"exec", "-t", "id", "sh"}, ""},
		{[]string{"state", "id"}, ""},
		{[]string{"--version"}, ""},
	} {
		if got := specFile(c.args); got != c.want {
			t.Errorf("specFile(%q) = %q, want %q", c.args, got, c.want)
		}
	}
}

func TestDropCaps(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	all := []string{"CAP_CHOWN", "CAP_SYS_RESOURCE", "CAP_SYS_ADMIN"}
	sets := map[string][]string{"bounding": all, "effective": all, "permitted": all}
	config := map[string]any{"ociVersion": "1.0.2", "process": map[string]any{"args": []string{"sh"}, "capabilities": sets}, "hostname": "n"}
	process := map[string]any{"args": []string{"sh"}, "capabilities": sets}
	missing := map[string]bool{"CAP_SYS_RESOURCE": true}
	for name, doc := range map[string]any{"config.json": config, "process.json": process} {
		p := filepath.Join(dir, name)
		data, _ := json.Marshal(doc)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := dropCaps(p, missing); err != nil {
			t.Fatal(err)
		}
		data, _ = os.ReadFile(p)
		var got struct {
			Hostname     string
			Args         []string
			Capabilities map[string][]string
			Process      struct {
				Args         []string
				Capabilities map[string][]string
			}
		}
		if err := json.Unmarshal(data, &got); err != nil {
			t.Fatal(err)
		}
		caps, args := got.Capabilities, got.Args
		if name == "config.json" {
			caps, args = got.Process.Capabilities, got.Process.Args
			if got.Hostname != "n" {
				t.Errorf("%s: other fields lost: %s", name, data)
			}
		}
		if len(args) != 1 {
			t.Errorf("%s: args lost: %s", name, data)
		}
		for set, list := range caps {
			if slices.Contains(list, "CAP_SYS_RESOURCE") || !slices.Contains(list, "CAP_SYS_ADMIN") || len(list) != 2 {
				t.Errorf("%s: %s = %v, want CAP_SYS_RESOURCE alone removed", name, set, list)
			}
		}
		if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v changed", name, st.Mode())
		}
	}
}

func TestMissingCaps(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "status")
	if err := os.WriteFile(p, []byte("Name:\tx\nCapBnd:\t000001fffeffffff\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := missingCaps(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !got["CAP_SYS_RESOURCE"] {
		t.Errorf("missing = %v, want CAP_SYS_RESOURCE only", got)
	}
}
