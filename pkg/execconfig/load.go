package execconfig

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"sigs.k8s.io/yaml"
)

// ProjectFile and PipelineFile are where Mage keeps executor config.
const (
	ProjectFile = "metadata.yaml"
	projectKey  = "k8s_executor_config"
	pipelineKey = "executor_config"
)

// PipelineFile is the pipeline's metadata.yaml relative to the project.
func PipelineFile(pipelineUUID string) string {
	return path.Join("pipelines", pipelineUUID, "metadata.yaml")
}

// Levels reads the project's and the pipeline's metadata.yaml from
// project (a file system rooted at the project directory), through cache
// (nil: read each time), and returns the levels in precedence order:
// project, pipeline, block (when blockUUID is set), then request. A
// missing file is an empty level; a malformed one is an error naming the
// file. The levels' values may be shared with other runs: Resolve copies
// them before it renders.
func Levels(project fs.FS, cache *Cache, pipelineUUID, blockUUID string, request map[string]any) ([]Level, error) {
	var errs []error
	top, err := cache.read(project, ProjectFile)
	if err != nil {
		errs = append(errs, err)
	}
	pipe, err := cache.read(project, PipelineFile(pipelineUUID))
	if err != nil {
		errs = append(errs, err)
	}
	levels := []Level{
		section(ProjectFile, projectKey, projectKey, top, &errs),
		section(PipelineFile(pipelineUUID), pipelineKey, pipelineKey, pipe, &errs),
	}
	if blockUUID != "" {
		levels = append(levels, blockLevel(PipelineFile(pipelineUUID), pipe, blockUUID, &errs))
	}
	levels = append(levels, Level{Source: "request", Path: pipelineKey, Values: request})
	return levels, errors.Join(errs...)
}

func readYAML(fsys fs.FS, name string) (map[string]any, error) {
	data, err := fs.ReadFile(fsys, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		hint := ""
		if strings.Contains(string(data), "{{") {
			hint = " (templates must be quoted: key: \"{{ env_var('X') }}\")"
		}
		return nil, fmt.Errorf("%s: not valid YAML: %w%s", name, err, hint)
	}
	return doc, nil
}

// section takes doc[key] as a level whose fields are reported under path.
func section(source, key, path string, doc map[string]any, errs *[]error) Level {
	l := Level{Source: source, Path: path}
	v, ok := doc[key]
	if !ok || v == nil {
		return l
	}
	m, ok := v.(map[string]any)
	if !ok {
		*errs = append(*errs, &FieldError{Source: source, Path: path, Problem: fmt.Sprintf("expected a map, got %s", describe(v))})
		return l
	}
	l.Values = m
	return l
}

func blockLevel(source string, pipe map[string]any, blockUUID string, errs *[]error) Level {
	path := fmt.Sprintf("blocks[%s].executor_config", blockUUID)
	blocks, _ := pipe["blocks"].([]any)
	for _, b := range blocks {
		if block, _ := b.(map[string]any); block != nil && block["uuid"] == blockUUID {
			return section(source, pipelineKey, path, block, errs)
		}
	}
	return Level{Source: source, Path: path}
}

// ConfigFileEnv is the env var naming Mage's job template file: executor
// config keys (metadata, container, pod, job, …) under every level.
const ConfigFileEnv = "K8S_CONFIG_FILE"

// ConfigFile is the job template a run's levels name: the highest level's
// config_file key, else fromEnv (the Mage container's K8S_CONFIG_FILE).
func ConfigFile(levels []Level, fromEnv string) string {
	for i := len(levels) - 1; i >= 0; i-- {
		if f, ok := levels[i].Values["config_file"].(string); ok && f != "" {
			return f
		}
	}
	return fromEnv
}

// FileLevel reads the job template name (a path inside root, which
// fsys is rooted at) as the lowest level of a run's config.
func FileLevel(fsys fs.FS, root, name string) (Level, error) {
	rel, ok := strings.CutPrefix(path.Clean(name), path.Clean(root)+"/")
	if !path.IsAbs(name) || !ok || !fs.ValidPath(rel) {
		return Level{}, &FieldError{Source: ConfigFileEnv, Path: "config_file",
			Problem: fmt.Sprintf("%q must be an absolute path inside %s, the directory of the Mage project, which the agent shares", name, root)}
	}
	doc, err := readYAML(fsys, rel)
	if err == nil && doc == nil {
		err = fmt.Errorf("%s: no such file (the job template named by %s or config_file)", name, ConfigFileEnv)
	}
	return Level{Source: name, Values: doc}, err
}
