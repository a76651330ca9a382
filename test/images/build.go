package images

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Image names the tests use; pulled never, loaded into the kind nodes.
// The agent and runner images are built by Docker from the Dockerfiles
// (test/kind); Agent names the agent's image where no image runs (kwok).
const (
	Agent  = "magekube/agent:dev"
	Server = "magekube/test-server:dev"
)

// NonRoot is distroless's nonroot user, as in the Dockerfiles.
const NonRoot = "65532:65532"

// file is one file of an image layer.
type file struct {
	path string // in the image
	src  string // on disk; empty for a directory
	mode int64
}

type spec struct {
	ref        string
	files      []file
	entrypoint []string
	cmd        []string
	user       string
}

// Build compiles the test programs (from module root repo) and writes one
// docker-archive tarball per test image into out: the Server image, whose
// block program the e2e suite's Jobs run. It returns the tarball paths.
func Build(ctx context.Context, repo, out string) ([]string, error) {
	bin := filepath.Join(out, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return nil, err
	}
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-tags", "urfave_cli_no_docs", "-ldflags", "-s -w", "-o", bin+"/",
		"./test/images/block")
	build.Dir = repo
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if output, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build image binaries: %w\n%s", err, output)
	}
	b := func(n string) string { return filepath.Join(bin, n) }
	var paths []string
	for _, s := range specs(b) {
		p := filepath.Join(out, sanitize(s.ref)+".tar")
		if err := s.write(p); err != nil {
			return nil, fmt.Errorf("image %s: %w", s.ref, err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}

func sanitize(ref string) string {
	out := []byte(ref)
	for i, c := range out {
		if c == '/' || c == ':' {
			out[i] = '_'
		}
	}
	return string(out)
}

// WriteComponent writes a docker-archive tarball at path for image ref:
// the static binary bin at /usr/local/bin/<name> as its entrypoint, on
// top of the root filesystem tarball rootfs when it is not "" (the kind
// node image's control-plane, CoreDNS and kube-proxy images).
func WriteComponent(path, ref, bin, name string, entrypoint []string, rootfs string) error {
	s := spec{ref: ref, entrypoint: entrypoint, files: []file{{path: "usr/local/bin/" + name, src: bin, mode: 0o755}}}
	var base []v1.Layer
	if rootfs != "" {
		l, err := tarball.LayerFromFile(rootfs)
		if err != nil {
			return err
		}
		base = append(base, l)
	}
	return s.write(path, base...)
}

// WriteStaticBase writes a docker-archive tarball at path for image ref:
// a static nonroot base like distroless's (users root and nonroot 65532,
// the machine's CA certificates, /tmp), for the Dockerfiles' BASE_IMAGE
// where the public one cannot be pulled.
func WriteStaticBase(path, ref string) error {
	dir, err := os.MkdirTemp("", "magekube-static-base-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	passwd := filepath.Join(dir, "passwd")
	group := filepath.Join(dir, "group")
	if err := os.WriteFile(passwd, []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(group, []byte("root:x:0:\nnonroot:x:65532:\n"), 0o644); err != nil {
		return err
	}
	s := spec{ref: ref, user: NonRoot, files: []file{
		{path: "etc/passwd", src: passwd, mode: 0o644},
		{path: "etc/group", src: group, mode: 0o644},
		{path: "tmp", mode: 0o1777},
		{path: "home/nonroot", mode: 0o755},
	}}
	if _, err := os.Stat("/etc/ssl/certs/ca-certificates.crt"); err == nil {
		s.files = append(s.files, file{path: "etc/ssl/certs/ca-certificates.crt", src: "/etc/ssl/certs/ca-certificates.crt", mode: 0o644})
	}
	return s.write(path)
}

func (s spec) write(path string, base ...v1.Layer) error {
	layer, err := tarLayer(s.files)
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, append(base, layer)...)
	if err != nil {
		return err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", runtime.GOARCH
	cfg.Config = v1.Config{Entrypoint: s.entrypoint, Cmd: s.cmd, User: s.user,
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return err
	}
	tag, err := name.NewTag(s.ref)
	if err != nil {
		return err
	}
	return tarball.WriteToFile(path, tag, img)
}

func tarLayer(files []file) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	explicit := map[string]bool{}
	for _, f := range files {
		if f.src == "" {
			explicit[f.path] = true
		}
		for d := filepath.Dir(f.path); d != "."; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	var parents []string
	for d := range dirs {
		if !explicit[d] {
			parents = append(parents, d)
		}
	}
	sort.Strings(parents) // a parent sorts before its children
	for _, d := range parents {
		if err := tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
			return nil, err
		}
	}
	for _, f := range files {
		if f.src == "" {
			if err := tw.WriteHeader(&tar.Header{Name: f.path + "/", Typeflag: tar.TypeDir, Mode: f.mode}); err != nil {
				return nil, err
			}
			continue
		}
		data, err := os.ReadFile(f.src)
		if err != nil {
			return nil, err
		}
		if err := tw.WriteHeader(&tar.Header{Name: f.path, Typeflag: tar.TypeReg, Mode: f.mode, Size: int64(len(data))}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
}

// specs are the test images; b maps a binary name to its built file.
func specs(b func(string) string) []spec {
	return []spec{
		{ref: Server, entrypoint: []string{"/usr/local/bin/block"}, cmd: []string{"serve"},
			files: []file{{path: "usr/local/bin/block", src: b("block"), mode: 0o755}, {path: "app/run_app.sh", src: b("block"), mode: 0o755},
				{path: "tmp", mode: 0o1777}, {path: "home/src", mode: 0o777}}},
	}
}
