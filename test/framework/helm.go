package framework

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/postrender"
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
