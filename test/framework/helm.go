package framework

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/postrender"
	"sigs.k8s.io/kustomize/api/krusty"
	kusttypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// MageChart is the stand-in for Mage's mageai Helm chart (its hooks, not
// the chart, which cannot be fetched here; see its Chart.yaml).
const MageChart = "test/fixtures/charts/mageai"

// HelmValues reads a values file.
func HelmValues(path string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	vals := map[string]any{}
	if err := yaml.Unmarshal(data, &vals); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return vals, nil
}

// RenderChart renders the chart in chartDir as `helm template release
// chartDir -n namespace` does, with Helm's own Go library (its values
// merge and template engine), then through the post-renderer executable
// when it is not "" (run with pathDir, where kubectl is, first on PATH).
// It returns the manifests.
func RenderChart(chartDir, release, namespace string, vals map[string]any, postRenderer, pathDir string) (string, error) {
	chrt, err := loader.LoadDir(chartDir)
	if err != nil {
		return "", err
	}
	opts := chartutil.ReleaseOptions{Name: release, Namespace: namespace, IsInstall: true, Revision: 1}
	renderVals, err := chartutil.ToRenderValues(chrt, vals, opts, chartutil.DefaultCapabilities)
	if err != nil {
		return "", err
	}
	files, err := engine.Render(chrt, renderVals)
	if err != nil {
		return "", fmt.Errorf("render %s: %w", chartDir, err)
	}
	names := make([]string, 0, len(files))
	for name, content := range files {
		base := filepath.Base(name)
		if strings.HasPrefix(base, "_") || strings.HasSuffix(base, ".txt") || strings.TrimSpace(content) == "" {
			continue
		}
		names = append(names, name)
	}
	sort.Strings(names)
	var b bytes.Buffer
	for _, name := range names {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", name, strings.TrimSpace(files[name]))
	}
	if postRenderer == "" {
		return b.String(), nil
	}
	if pathDir != "" {
		abs, err := filepath.Abs(pathDir)
		if err != nil {
			return "", err
		}
		if err := os.Setenv("PATH", abs+string(os.PathListSeparator)+os.Getenv("PATH")); err != nil {
			return "", err
		}
	}
	pr, err := postrender.NewExec(postRenderer)
	if err != nil {
		return "", err
	}
	out, err := pr.Run(&b)
	if err != nil {
		return "", fmt.Errorf("post-render %s: %w", postRenderer, err)
	}
	return out.String(), nil
}

// Helm4 is the Helm 4 CLI (helm in binDir) in a Helm home of its own, with
// magekube's post-renderer plugin installed as the README says: helm
// plugin install deploy/helm/plugin. kubectl (binDir) is first on its PATH.
type Helm4 struct {
	bin, home string
	env       []string
}

// NewHelm4 makes the Helm home in home and installs the plugin of repo.
func NewHelm4(ctx context.Context, binDir, repo, home string) (*Helm4, error) {
	abs, err := filepath.Abs(binDir)
	if err != nil {
		return nil, err
	}
	h := &Helm4{bin: filepath.Join(abs, "helm"), home: home, env: append(os.Environ(),
		"PATH="+abs+string(os.PathListSeparator)+os.Getenv("PATH"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
	)}
	if _, err := h.Run(ctx, "plugin", "install", filepath.Join(repo, "deploy/helm/plugin")); err != nil {
		return nil, err
	}
	return h, nil
}

// Run runs helm with args and returns its standard output.
func (h *Helm4) Run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, h.bin, args...)
	cmd.Env = h.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// ValuesFile writes vals as a values file in the Helm home and returns
// its path.
func (h *Helm4) ValuesFile(name string, vals map[string]any) (string, error) {
	data, err := yaml.Marshal(vals)
	if err != nil {
		return "", err
	}
	path := filepath.Join(h.home, name)
	return path, os.WriteFile(path, data, 0o644)
}

// Template renders the chart as `helm template release chartDir -n
// namespace -f <vals> --post-renderer magekube [--post-renderer-args A]`.
func (h *Helm4) Template(ctx context.Context, chartDir, release, namespace string, vals map[string]any, postRendererArgs ...string) (string, error) {
	values, err := h.ValuesFile("values.yaml", vals)
	if err != nil {
		return "", err
	}
	args := []string{"template", release, chartDir, "-n", namespace, "-f", values, "--post-renderer", "magekube"}
	for _, a := range postRendererArgs {
		args = append(args, "--post-renderer-args", a)
	}
	return h.Run(ctx, args...)
}

// RenderInflated builds a copy of the kustomize-inflation overlay in
// overlayDir (deploy/helm/inflate/<mode>) as Argo CD does, `kustomize
// build --enable-helm`, with the pinned kustomize and helm (binDir). The
// copy sits beside the overlay (so its relative paths hold) and adds vals
// as its valuesFile; the stand-in chart is copied into the copy's chart
// home as the chart and version the overlay names (kustomize reads no
// file outside the overlay, links resolved), so nothing is pulled; the
// overlay's namespace is namespace, and agentImage (when not "") the
// agent's image, as a user's `images:` would set them. The copy is
// removed afterwards.
func RenderInflated(ctx context.Context, binDir, overlayDir, chartDir, namespace string, vals map[string]any, agentImage string) (string, error) {
	abs, err := filepath.Abs(binDir)
	if err != nil {
		return "", err
	}
	text, err := os.ReadFile(filepath.Join(overlayDir, "kustomization.yaml"))
	if err != nil {
		return "", err
	}
	var k struct {
		HelmCharts []struct{ Name, Version string } `json:"helmCharts"`
	}
	if err := yaml.Unmarshal(text, &k); err != nil || len(k.HelmCharts) != 1 {
		return "", fmt.Errorf("%s: want one helmCharts entry (%v)", overlayDir, err)
	}
	copyDir, err := os.MkdirTemp(filepath.Dir(overlayDir), ".test-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(copyDir)
	chartHome := filepath.Join(copyDir, "charts", k.HelmCharts[0].Name+"-"+k.HelmCharts[0].Version, k.HelmCharts[0].Name)
	if err := os.CopyFS(chartHome, os.DirFS(chartDir)); err != nil {
		return "", err
	}
	data, err := yaml.Marshal(vals)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(copyDir, "values.yaml"), data, 0o644); err != nil {
		return "", err
	}
	const marker = "    # valuesFile: values.yaml"
	if !bytes.Contains(text, []byte(marker)) {
		return "", fmt.Errorf("%s: no %q line to set the values file on", overlayDir, strings.TrimSpace(marker))
	}
	text = bytes.Replace(text, []byte(marker), []byte("    valuesFile: values.yaml"), 1)
	text = bytes.ReplaceAll(text, []byte("namespace: mage\n"), []byte("namespace: "+namespace+"\n"))
	if agentImage != "" {
		i := strings.LastIndex(agentImage, ":")
		text = fmt.Appendf(text, "images:\n  - {name: ghcr.io/magekube/agent, newName: %q, newTag: %q}\n", agentImage[:i], agentImage[i+1:])
	}
	if err := os.WriteFile(filepath.Join(copyDir, "kustomization.yaml"), text, 0o644); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(abs, "kustomize"), "build", "--enable-helm", "--helm-command", filepath.Join(abs, "helm"), copyDir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("kustomize build --enable-helm %s: %w\n%s", overlayDir, err, stderr.String())
	}
	return string(out), nil
}

// HelmRelease is what the tests read of a Flux HelmRelease: its values
// and its kustomize post-renderers.
type HelmRelease struct {
	Kind string
	Spec struct {
		Values        map[string]any
		PostRenderers []struct {
			Kustomize *struct {
				Patches []kusttypes.Patch
			}
		} `json:"postRenderers"`
	}
}

// ReadHelmRelease reads the HelmRelease among the documents of path.
func ReadHelmRelease(path string) (*HelmRelease, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for _, doc := range strings.Split(string(data), "\n---\n") {
		hr := &HelmRelease{}
		if err := yaml.Unmarshal([]byte(doc), hr); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if hr.Kind == "HelmRelease" {
			return hr, nil
		}
	}
	return nil, fmt.Errorf("%s: no HelmRelease", path)
}

// RenderFlux renders the chart as Flux's helm-controller does for the
// HelmRelease in helmReleaseFile (deploy/flux/helmrelease.yaml): its
// values, with vals over them key by key, through Helm's Go library; then
// its postRenderers as helm-controller applies kustomize ones (read in
// its internal/postrender/kustomize.go, v1.6.3: krusty on an in-memory
// file system, the chart's output the one resource, the listed patches
// and nothing else). Helm-controller cannot run here; this is a stand-in
// written from that code. target, when not "", renames the Deployment
// the patches name (the scheduler in standaloneScheduler mode).
func RenderFlux(helmReleaseFile, chartDir, release, namespace string, vals map[string]any, target string) (string, error) {
	hr, err := ReadHelmRelease(helmReleaseFile)
	if err != nil {
		return "", err
	}
	merged := maps.Clone(hr.Spec.Values)
	if merged == nil {
		merged = map[string]any{}
	}
	maps.Copy(merged, vals)
	out, err := RenderChart(chartDir, release, namespace, merged, "", "")
	if err != nil {
		return "", err
	}
	for _, pr := range hr.Spec.PostRenderers {
		if pr.Kustomize == nil {
			continue
		}
		fsys := filesys.MakeFsInMemory()
		if err := fsys.WriteFile("/helm-output.yaml", []byte(out)); err != nil {
			return "", err
		}
		k := kusttypes.Kustomization{Resources: []string{"helm-output.yaml"}}
		for _, p := range pr.Kustomize.Patches {
			if target != "" && p.Target != nil && p.Target.Kind == "Deployment" {
				p.Target.Name = target
			}
			k.Patches = append(k.Patches, p)
		}
		kdata, err := yaml.Marshal(k)
		if err != nil {
			return "", err
		}
		if err := fsys.WriteFile("/kustomization.yaml", kdata); err != nil {
			return "", err
		}
		opts := krusty.MakeDefaultOptions()
		opts.LoadRestrictions = kusttypes.LoadRestrictionsNone
		opts.PluginConfig = kusttypes.DisabledPluginConfig()
		res, err := krusty.MakeKustomizer(opts).Run(fsys, "/")
		if err != nil {
			return "", fmt.Errorf("post-render %s: %w", helmReleaseFile, err)
		}
		y, err := res.AsYaml()
		if err != nil {
			return "", err
		}
		out = string(y)
	}
	return out, nil
}
