package images

import (
	"bufio"
	"encoding/json"
	"os"
	"path"
	"slices"
	"strings"
	"testing"
)

// final is what a Dockerfile's last stage gives the image.
type final struct {
	files      []string
	user       string
	entrypoint []string
	cmd        []string
}

func parseDockerfile(t *testing.T, name string) final {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out final
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		rest := strings.TrimSpace(strings.TrimPrefix(sc.Text(), fields[0]))
		switch fields[0] {
		case "FROM":
			out = final{}
		case "COPY":
			out.files = append(out.files, strings.TrimPrefix(fields[len(fields)-1], "/"))
		case "USER":
			out.user = rest
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &out.entrypoint); err != nil {
				t.Fatalf("%s: ENTRYPOINT must be exec form: %v", name, err)
			}
		case "CMD":
			if err := json.Unmarshal([]byte(rest), &out.cmd); err != nil {
				t.Fatalf("%s: CMD must be exec form: %v", name, err)
			}
		}
	}
	return out
}

// TestDockerfilesMatchTestImages checks that the Dockerfiles (which cannot
// be built here) give the same paths, user and entrypoint as the images
// the offline cluster runs.
func TestDockerfilesMatchTestImages(t *testing.T) {
	t.Parallel()
	byRef := map[string]spec{}
	for _, s := range specs(func(n string) string { return n }) {
		byRef[s.ref] = s
	}
	for file, ref := range map[string]string{"../../Dockerfile.agent": Agent, "../../Dockerfile.runner": Runner} {
		got, want := parseDockerfile(t, file), byRef[ref]
		var files []string
		for _, f := range want.files {
			files = append(files, f.path)
		}
		if !slices.Equal(got.files, files) || got.user != want.user || !slices.Equal(got.entrypoint, want.entrypoint) || !slices.Equal(got.cmd, want.cmd) {
			t.Errorf("%s: files %v user %q entrypoint %v cmd %v; test image %s has %v %q %v %v",
				path.Base(file), got.files, got.user, got.entrypoint, got.cmd, ref, files, want.user, want.entrypoint, want.cmd)
		}
	}
}
