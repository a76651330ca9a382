package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/json"
	"io"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// TestReleaseImages builds the release images and reads them back from
// their OCI layouts: one index per image with both platforms, each with
// its binaries present, static and of its architecture, run as nonroot,
// and an SBOM naming the image and the modules in its binaries.
func TestReleaseImages(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles the agent and runner twice")
	}
	out := t.TempDir()
	built, err := Build(t.Context(), Options{Out: out, Version: "1.2.3", Commit: "abc", Registry: "example.test/magekube", Repo: "../.."})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"agent": {"agent", "runner"}, "runner": {"runner"}}
	if len(built) != len(want) {
		t.Fatalf("built %v, want %d images", built, len(want))
	}
	machines := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	for _, b := range built {
		root, err := layout.ImageIndexFromPath(out + "/" + b.Dir)
		if err != nil {
			t.Fatal(err)
		}
		top, err := root.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		if len(top.Manifests) != 1 || top.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != b.Name+":1.2.3" {
			t.Fatalf("%s: layout index %+v, want one index named %s:1.2.3", b.Dir, top.Manifests, b.Name)
		}
		idx, err := root.ImageIndex(top.Manifests[0].Digest)
		if err != nil {
			t.Fatal(err)
		}
		m, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		images, attestations := map[v1.Hash]string{}, map[string]v1.Descriptor{}
		for _, d := range m.Manifests {
			if d.Platform == nil {
				t.Fatalf("%s: manifest %s without platform", b.Dir, d.Digest)
			}
			if d.Platform.OS == "unknown" {
				attestations[d.Annotations["vnd.docker.reference.digest"]] = d
				continue
			}
			images[d.Digest] = d.Platform.Architecture
		}
		if len(images) != 2 || len(attestations) != 2 {
			t.Fatalf("%s: %d images and %d SBOMs, want 2 and 2", b.Dir, len(images), len(attestations))
		}
		for digest, arch := range images {
			img, err := idx.Image(digest)
			if err != nil {
				t.Fatal(err)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if cf.Architecture != arch || cf.OS != "linux" || cf.Config.User != "65532:65532" || cf.Config.Entrypoint[0] != "/usr/local/bin/"+want[b.Dir][0] {
				t.Errorf("%s/%s: config %s/%s user %q entrypoint %v", b.Dir, arch, cf.OS, cf.Architecture, cf.Config.User, cf.Config.Entrypoint)
			}
			files := filesOf(t, img)
			for _, bin := range want[b.Dir] {
				data, ok := files["usr/local/bin/"+bin]
				if !ok {
					t.Errorf("%s/%s: no /usr/local/bin/%s", b.Dir, arch, bin)
					continue
				}
				checkStatic(t, b.Dir+"/"+arch+"/"+bin, data, machines[arch])
			}
			att, ok := attestations[digest.String()]
			if !ok {
				t.Errorf("%s/%s: no SBOM for %s", b.Dir, arch, digest)
				continue
			}
			checkSBOM(t, idx, att, b.Name+":1.2.3", digest)
		}
	}
}

// filesOf reads every regular file of the image's layers.
func filesOf(t *testing.T, img v1.Image) map[string][]byte {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Typeflag == tar.TypeReg {
				data, _ := io.ReadAll(tr)
				out[h.Name] = data
			}
		}
		rc.Close()
	}
	return out
}

// checkStatic: an ELF executable of machine m with no interpreter and no
// shared libraries.
func checkStatic(t *testing.T, what string, data []byte, m elf.Machine) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		t.Errorf("%s: not ELF: %v", what, err)
		return
	}
	if f.Machine != m {
		t.Errorf("%s: machine %v, want %v", what, f.Machine, m)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s: has a program interpreter (dynamically linked)", what)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s: needs shared libraries %v", what, libs)
	}
}

func checkSBOM(t *testing.T, idx v1.ImageIndex, d v1.Descriptor, name string, subject v1.Hash) {
	t.Helper()
	att, err := idx.Image(d.Digest)
	if err != nil {
		t.Fatal(err)
	}
	m, err := att.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject == nil || m.Subject.Digest != subject {
		t.Errorf("SBOM of %s: subject %v, want %s", name, m.Subject, subject)
	}
	layers, err := att.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("SBOM of %s: %d layers (%v)", name, len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var st struct {
		PredicateType string `json:"predicateType"`
		Subject       []struct {
			Name   string            `json:"name"`
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
		Predicate struct {
			SPDXVersion string `json:"spdxVersion"`
			Packages    []struct {
				Name string `json:"name"`
			} `json:"packages"`
		} `json:"predicate"`
	}
	if err := json.NewDecoder(rc).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if st.PredicateType != "https://spdx.dev/Document" || st.Predicate.SPDXVersion != "SPDX-2.3" || len(st.Subject) != 1 ||
		st.Subject[0].Name != name || st.Subject[0].Digest["sha256"] != subject.Hex {
		t.Errorf("SBOM of %s: %+v", name, st.Subject)
	}
	var names []string
	for _, p := range st.Predicate.Packages {
		names = append(names, p.Name)
	}
	all := strings.Join(names, " ")
	for _, want := range []string{"runner", "go", "github.com/urfave/cli/v2"} {
		if !strings.Contains(all, want) {
			t.Errorf("SBOM of %s lacks %s: %s", name, want, all)
		}
	}
}
