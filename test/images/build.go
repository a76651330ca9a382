package images

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/magekube/magekube/internal/oci"
)

// Image names the tests use; pulled never, loaded into the kind nodes.
// The agent and runner images are built by Docker from the Dockerfiles
// (test/kind); Agent names the agent's image where no image runs (kwok).
const (
	Agent  = "magekube/agent:dev"
	Server = "magekube/test-server:dev"
)

// NonRoot is distroless's nonroot user, as in the Dockerfiles.
const NonRoot = oci.NonRoot

type spec struct {
	ref        string
	files      []oci.File
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
	s := spec{ref: ref, entrypoint: entrypoint, files: []oci.File{{Path: "usr/local/bin/" + name, Src: bin, Mode: 0o755}}}
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
	return spec{ref: ref, user: NonRoot, files: oci.StaticBase()}.write(path)
}

func (s spec) write(path string, base ...v1.Layer) error {
	layer, err := oci.Layer(s.files)
	if err != nil {
		return err
	}
	img, err := oci.Image(v1.Platform{OS: "linux", Architecture: runtime.GOARCH},
		v1.Config{Entrypoint: s.entrypoint, Cmd: s.cmd, User: s.user}, append(base, layer)...)
	if err != nil {
		return err
	}
	tag, err := name.NewTag(s.ref)
	if err != nil {
		return err
	}
	return tarball.WriteToFile(path, tag, img)
}

// specs are the test images; b maps a binary name to its built file.
func specs(b func(string) string) []spec {
	return []spec{
		{ref: Server, entrypoint: []string{"/usr/local/bin/block"}, cmd: []string{"serve"},
			files: []oci.File{{Path: "usr/local/bin/block", Src: b("block"), Mode: 0o755}, {Path: "app/run_app.sh", Src: b("block"), Mode: 0o755},
				{Path: "tmp", Mode: 0o1777}, {Path: "home/src", Mode: 0o777}}},
	}
}
