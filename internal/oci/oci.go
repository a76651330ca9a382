// Package oci writes container images without Docker
// (go-containerregistry): a layer from files, the static nonroot base the
// project's images run on, and an image from layers. The release images
// (hack/images) and the test images (test/images) are built with it.
package oci

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"sort"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// NonRoot is distroless's nonroot user, as in the Dockerfiles.
const NonRoot = "65532:65532"

// File is one file or directory of a layer.
type File struct {
	Path string // in the image, without a leading slash
	// Src is the file on disk, Data its content when Src is ""; a File
	// with neither is a directory.
	Src  string
	Data []byte
	Mode int64
}

func (f File) isDir() bool { return f.Src == "" && f.Data == nil }

// Layer is a layer holding files, their parent directories added (0755).
func Layer(files []File) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	explicit := map[string]bool{}
	for _, f := range files {
		if f.isDir() {
			explicit[f.Path] = true
		}
		for d := filepath.Dir(f.Path); d != "."; d = filepath.Dir(d) {
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
		if f.isDir() {
			if err := tw.WriteHeader(&tar.Header{Name: f.Path + "/", Typeflag: tar.TypeDir, Mode: f.Mode}); err != nil {
				return nil, err
			}
			continue
		}
		data := f.Data
		if f.Src != "" {
			var err error
			if data, err = os.ReadFile(f.Src); err != nil {
				return nil, err
			}
		}
		if err := tw.WriteHeader(&tar.Header{Name: f.Path, Typeflag: tar.TypeReg, Mode: f.Mode, Size: int64(len(data))}); err != nil {
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

// caBundle is the machine's CA certificates, copied into the base.
const caBundle = "/etc/ssl/certs/ca-certificates.crt"

// StaticBase is a static nonroot root filesystem like distroless's:
// users root and nonroot (65532), /tmp, the nonroot home and, when the
// machine has them, its CA certificates (for OTLP endpoints over TLS).
func StaticBase() []File {
	files := []File{
		{Path: "etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{Path: "etc/group", Mode: 0o644, Data: []byte("root:x:0:\nnonroot:x:65532:\n")},
		{Path: "tmp", Mode: 0o1777},
		{Path: "home/nonroot", Mode: 0o755},
	}
	if _, err := os.Stat(caBundle); err == nil {
		files = append(files, File{Path: "etc/ssl/certs/ca-certificates.crt", Src: caBundle, Mode: 0o644})
	}
	return files
}

// Image stacks layers into an image for platform with cfg (PATH is set
// when cfg has no Env).
func Image(platform v1.Platform, cfg v1.Config, layers ...v1.Layer) (v1.Image, error) {
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = platform.OS, platform.Architecture, platform.Variant
	if cfg.Env == nil {
		cfg.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	}
	cf.Config = cfg
	return mutate.ConfigFile(img, cf)
}

// Platform sets the platform in img's config.
func Platform(img v1.Image, p v1.Platform) (v1.Image, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	return mutate.ConfigFile(img, cf)
}
