package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/magekube/magekube/internal/oci"
)

// Platforms the release images are built for.
var Platforms = []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}

// Options of one build.
type Options struct {
	Out, Version, Commit, Registry string
	// Repo is the module root the commands are built from.
	Repo string
}

// image is one release image: its binaries (the first is the
// entrypoint) and its default arguments.
type image struct {
	name string
	bins []string
	cmd  []string
}

var releaseImages = []image{
	{name: "agent", bins: []string{"agent", "runner"}, cmd: []string{"run"}},
	{name: "runner", bins: []string{"runner"}},
}

// Built is one image written: its layout directory under Out and its
// index digest.
type Built struct {
	Name, Dir string
	Digest    v1.Hash
}

// Build cross-compiles the binaries for every platform and writes each
// image's index (with its SBOMs) as an OCI layout in o.Out/<name>.
func Build(ctx context.Context, o Options) ([]Built, error) {
	bins := filepath.Join(o.Out, "bin")
	for _, p := range Platforms {
		if err := compile(ctx, o, p, filepath.Join(bins, p.Architecture)); err != nil {
			return nil, err
		}
	}
	var out []Built
	for _, img := range releaseImages {
		idx, err := index(o, img, bins)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", img.name, err)
		}
		dir := filepath.Join(o.Out, img.name)
		if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
		if _, err := layout.Write(dir, empty.Index); err != nil {
			return nil, err
		}
		ref := o.Registry + "/" + img.name + ":" + o.Version
		if err := layout.Path(dir).AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref})); err != nil {
			return nil, err
		}
		digest, err := idx.Digest()
		if err != nil {
			return nil, err
		}
		out = append(out, Built{Name: o.Registry + "/" + img.name, Dir: img.name, Digest: digest})
	}
	return out, os.RemoveAll(bins)
}

// compile builds every command, static, for platform p into dir.
func compile(ctx context.Context, o Options, p v1.Platform, dir string) error {
	ldflags := fmt.Sprintf("-s -w -X github.com/magekube/magekube/pkg/buildinfo.Version=%s -X github.com/magekube/magekube/pkg/buildinfo.Commit=%s", o.Version, o.Commit)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-tags", "urfave_cli_no_docs", "-ldflags", ldflags, "-o", dir+"/", "./cmd/agent", "./cmd/runner")
	cmd.Dir = o.Repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build for %s/%s: %w\n%s", p.OS, p.Architecture, err, out)
	}
	return nil
}

// index is the image for every platform, each followed by its SBOM.
func index(o Options, img image, bins string) (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	created := time.Unix(0, 0).UTC() // reproducible: the same sources give the same digests
	labels := map[string]string{
		"org.opencontainers.image.title":    "magekube " + img.name,
		"org.opencontainers.image.version":  o.Version,
		"org.opencontainers.image.revision": o.Commit,
		"org.opencontainers.image.source":   "https://github.com/magekube/magekube",
		"org.opencontainers.image.licenses": "Apache-2.0",
	}
	for _, p := range Platforms {
		var files []oci.File
		var binPaths []string
		for _, b := range img.bins {
			src := filepath.Join(bins, p.Architecture, b)
			files = append(files, oci.File{Path: "usr/local/bin/" + b, Src: src, Mode: 0o755})
			binPaths = append(binPaths, src)
		}
		base, err := oci.Layer(oci.StaticBase())
		if err != nil {
			return nil, err
		}
		binLayer, err := oci.Layer(files)
		if err != nil {
			return nil, err
		}
		image, err := oci.Image(p, v1.Config{
			Entrypoint: []string{"/usr/local/bin/" + img.bins[0]}, Cmd: img.cmd, User: oci.NonRoot, Labels: labels,
		}, base, binLayer)
		if err != nil {
			return nil, err
		}
		image, err = mutate.CreatedAt(image, v1.Time{Time: created})
		if err != nil {
			return nil, err
		}
		image = mutate.MediaType(image, types.OCIManifestSchema1)
		image = mutate.ConfigMediaType(image, types.OCIConfigJSON)
		platform := p
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: image, Descriptor: v1.Descriptor{Platform: &platform}})
		sbom, desc, err := attestation(o, img, p, image, binPaths)
		if err != nil {
			return nil, err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: sbom, Descriptor: desc})
	}
	return idx, nil
}

// attestation is the SBOM of one platform's image as Docker's build tools
// attach it: an in-toto statement with an SPDX predicate, in a manifest of
// platform unknown/unknown that names the image it describes (so
// platform-matching clients skip it), also as its OCI subject.
func attestation(o Options, img image, p v1.Platform, subject v1.Image, bins []string) (v1.Image, v1.Descriptor, error) {
	digest, err := subject.Digest()
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	doc, err := SBOM(o.Registry+"/"+img.name, o.Version, p, bins)
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	statement, err := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v0.1",
		"predicateType": "https://spdx.dev/Document",
		"subject":       []map[string]any{{"name": o.Registry + "/" + img.name + ":" + o.Version, "digest": map[string]string{"sha256": digest.Hex}}},
		"predicate":     doc,
	})
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	layer := static.NewLayer(statement, "application/vnd.in-toto+json")
	att, err := mutate.Append(empty.Image, mutate.Addendum{Layer: layer, Annotations: map[string]string{"in-toto.io/predicate-type": "https://spdx.dev/Document"}})
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	att, err = oci.Platform(att, v1.Platform{OS: "unknown", Architecture: "unknown"})
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	att = mutate.MediaType(att, types.OCIManifestSchema1)
	att = mutate.ConfigMediaType(att, types.OCIConfigJSON)
	size, err := subject.Size()
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	att = mutate.Subject(att, v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: digest, Size: size}).(v1.Image)
	return att, v1.Descriptor{
		Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"},
		Annotations: map[string]string{
			"vnd.docker.reference.type":   "attestation-manifest",
			"vnd.docker.reference.digest": digest.String(),
		},
	}, nil
}
