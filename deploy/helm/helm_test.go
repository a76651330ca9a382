// Package helm holds no code: its test renders the stand-in of Mage's
// mageai chart (test/fixtures/charts/mageai) with Helm's Go library and
// the values here, and checks the result against the kustomize route.
// The post-renderer is exercised with kubectl in the integration tier,
// and the whole route on kind in e2e.
package helm

import (
	"encoding/json"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/magekube/magekube/test/framework"
)

const chart = "../../" + framework.MageChart

// deployments renders the chart with the values file and returns its
// Deployments by name.
func deployments(t *testing.T, valuesFile string) map[string]*appsv1.Deployment {
	t.Helper()
	vals, err := framework.HelmValues(valuesFile)
	if err != nil {
		t.Fatal(err)
	}
	manifests, err := framework.RenderChart(chart, "mageai", "mage", vals, "", "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*appsv1.Deployment{}
	for _, doc := range strings.Split(manifests, "\n---\n") {
		var kind struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &kind); err != nil {
			t.Fatalf("%v\n%s", err, doc)
		}
		if kind.Kind != "Deployment" {
			continue
		}
		d := &appsv1.Deployment{}
		if err := yaml.UnmarshalStrict([]byte(doc), d); err != nil {
			t.Fatalf("%v\n%s", err, doc)
		}
		out[d.Name] = d
	}
	return out
}

// patchValues are the values a JSON patch file adds, by path.
func patchValues(t *testing.T, path string) map[string][]json.RawMessage {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ops []struct {
		Path  string          `json:"path"`
		Value json.RawMessage `json:"value"`
	}
	if err := yaml.Unmarshal(data, &ops); err != nil {
		t.Fatal(err)
	}
	out := map[string][]json.RawMessage{}
	for _, op := range ops {
		out[op.Path] = append(out[op.Path], op.Value)
	}
	return out
}

func decode[T any](t *testing.T, raw json.RawMessage) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// named is the pod's container called name (never found by position:
// the chart may put containers of its own ahead of extraContainers).
func named(t *testing.T, spec corev1.PodSpec, name string) corev1.Container {
	t.Helper()
	for _, c := range spec.Containers {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %s", name)
	return corev1.Container{}
}

// TestValuesMatchTheComponents: on the chart's single Deployment, the
// values give the pod what the sidecar and trigger components give a
// kustomize user: the same agent container and token volume, the token
// split, and the trigger on the Mage container.
func TestValuesMatchTheComponents(t *testing.T) {
	d := deployments(t, "values.yaml")["mageai"]
	if d == nil {
		t.Fatal("no Deployment mageai")
	}
	spec := d.Spec.Template.Spec
	if spec.ServiceAccountName != "magekube-agent" || len(spec.Containers) != 2 {
		t.Fatalf("service account %q, %d containers", spec.ServiceAccountName, len(spec.Containers))
	}
	sidecar := patchValues(t, "../manifests/sidecar/sidecar-patch.yaml")
	wantAgent := decode[corev1.Container](t, sidecar["/spec/template/spec/containers/-"][0])
	if diff := cmp.Diff(wantAgent, named(t, spec, "magekube-agent")); diff != "" {
		t.Errorf("the agent container differs from deploy/manifests/sidecar's (-sidecar +values):\n%s", diff)
	}
	wantToken := decode[corev1.Volume](t, sidecar["/spec/template/spec/volumes/-"][0])
	found := false
	for _, v := range spec.Volumes {
		if v.Name == wantToken.Name {
			found = true
			if diff := cmp.Diff(wantToken, v); diff != "" {
				t.Errorf("token volume differs (-sidecar +values):\n%s", diff)
			}
		}
	}
	if !found {
		t.Errorf("no %s volume", wantToken.Name)
	}
	mage := named(t, spec, "mageai")
	for _, m := range mage.VolumeMounts {
		if m.Name == wantToken.Name {
			t.Error("the Mage container mounts the agent's token")
		}
	}
	trigger := patchValues(t, "../manifests/mage-trigger/trigger-patch.yaml")
	for _, raw := range trigger["/spec/template/spec/containers/0/env/-"] {
		want := decode[corev1.EnvVar](t, raw)
		if !has(mage.Env, want) {
			t.Errorf("the Mage container lacks the trigger's %s=%s", want.Name, want.Value)
		}
	}
	wantMount := decode[corev1.VolumeMount](t, trigger["/spec/template/spec/containers/0/volumeMounts/-"][0])
	if !has(mage.VolumeMounts, wantMount) {
		t.Errorf("the Mage container lacks the trigger's mount %+v", wantMount)
	}
	if !has(mage.Env, corev1.EnvVar{Name: "KUBE_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}) {
		t.Error("extraEnvs replaces the chart's list: KUBE_NAMESPACE must stay")
	}
}

// TestStandaloneNeedsThePostRenderer: in standaloneScheduler mode the
// chart renders no extraContainers, so its values alone cannot add the
// agent (the README sends those users to post-render.sh).
func TestStandaloneNeedsThePostRenderer(t *testing.T) {
	ds := deployments(t, "values-standalone.yaml")
	if ds["mageai-scheduler"] == nil || ds["mageai-webserver"] == nil {
		t.Fatalf("deployments %v, want mageai-scheduler and mageai-webserver", slices.Sorted(maps.Keys(ds)))
	}
	vals, err := framework.HelmValues("values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	vals["standaloneScheduler"] = true
	manifests, err := framework.RenderChart(chart, "mageai", "mage", vals, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(manifests, "ghcr.io/magekube/agent") {
		t.Error("the chart rendered extraContainers in standaloneScheduler mode; the fixture no longer matches mageai 0.2.x")
	}
}

// has reports whether list holds an element equal to want.
func has[T any](list []T, want T) bool {
	return slices.ContainsFunc(list, func(x T) bool { return cmp.Equal(x, want) })
}

// TestSelectMageaiChart: a kustomize user of `helm template` output
// chooses the chart's Deployment with select/mageai-chart, and the sidecar
// and trigger components patch it (the chart's values add nothing here).
func TestSelectMageaiChart(t *testing.T) {
	vals, err := framework.HelmValues("values-standalone.yaml")
	if err != nil {
		t.Fatal(err)
	}
	vals["standaloneScheduler"] = false
	manifests, err := framework.RenderChart(chart, "mageai", "mage", vals, "", "")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(".", ".render.test-") // components are taken by relative path
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	kustomization := "resources: [chart.yaml]\ncomponents:\n- ../../manifests/select/mageai-chart\n- ../../manifests/sidecar\n- ../../manifests/mage-trigger\n"
	if err := os.WriteFile(dir+"/chart.yaml", []byte(manifests), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/kustomization.yaml", []byte(kustomization), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatal(err)
	}
	agents := 0
	for _, r := range res.Resources() {
		if r.GetKind() != "Deployment" {
			continue
		}
		data, _ := r.AsYAML()
		d := &appsv1.Deployment{}
		if err := yaml.Unmarshal(data, d); err != nil {
			t.Fatal(err)
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Name == "magekube-agent" {
				agents++
			}
		}
		if d.Spec.Template.Spec.Containers[0].Name != "mageai" || !has(d.Spec.Template.Spec.Containers[0].Env, corev1.EnvVar{Name: "PYTHONPATH", Value: "/opt/magekube/python:/home/src"}) {
			t.Errorf("%s: the Mage container lacks the trigger", d.Name)
		}
	}
	if agents != 1 {
		t.Errorf("%d agent containers, want 1", agents)
	}
}

// TestFluxPatchesAreTheComponents: the Flux HelmRelease's post-renderer
// patches are the kustomize components' patches, verbatim (Flux takes no
// components), and its images are the release's.
func TestFluxPatchesAreTheComponents(t *testing.T) {
	hr, err := framework.ReadHelmRelease("../flux/helmrelease.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(hr.Spec.PostRenderers) != 1 {
		t.Fatalf("%d postRenderers, want 1", len(hr.Spec.PostRenderers))
	}
	if hr.Spec.PostRenderers[0].Kustomize == nil {
		t.Fatal("the post-renderer is not a kustomize one")
	}
	patches := hr.Spec.PostRenderers[0].Kustomize.Patches
	for i, file := range []string{"../manifests/sidecar/sidecar-patch.yaml", "../manifests/mage-trigger/trigger-patch.yaml"} {
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if i >= len(patches) {
			t.Fatalf("no patch %d for %s", i, file)
		}
		if diff := cmp.Diff(strings.TrimSpace(string(want)), strings.TrimSpace(patches[i].Patch)); diff != "" {
			t.Errorf("patch %d differs from %s (-file +HelmRelease):\n%s", i, file, diff)
		}
		if tg := patches[i].Target; tg == nil || tg.Name != "mageai" || tg.Kind != "Deployment" {
			t.Errorf("patch %d targets %v, want the Deployment mageai", i, patches[i].Target)
		}
	}
}
