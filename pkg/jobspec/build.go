package jobspec

import (
	"errors"
	"fmt"
	"io/fs"
	"path"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/magekube/magekube/pkg/execconfig"
	"github.com/magekube/magekube/pkg/protocol"
)

// ConfigError marks a build failure caused by the user's executor config
// or request (reason InvalidConfig), as opposed to the agent's own setup.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// Builder turns a request into the Job the agent creates for it.
type Builder struct {
	Settings Settings
	// ProjectFS opens a request's project_dir; default: the local disk.
	ProjectFS func(projectDir string) fs.FS
	// Configs keeps the project's parsed metadata.yaml files between
	// runs; nil reads them for each run.
	Configs *execconfig.Cache
}

// Build reads the project's executor config for req, merges it and builds
// the Job from the server pod: Resolve, then FromConfig.
func (b Builder) Build(pod *corev1.Pod, req *protocol.Request) (*batchv1.Job, error) {
	cfg, err := b.Resolve(pod, req)
	if err != nil {
		return nil, err
	}
	return b.FromConfig(pod, cfg, req)
}

// Resolve reads the project's executor config for req (metadata.yaml
// levels, the config file, the request's own) and merges and validates
// it; a problem is a *ConfigError naming the file and field.
func (b Builder) Resolve(pod *corev1.Pod, req *protocol.Request) (*execconfig.Config, error) {
	open := b.ProjectFS
	if open == nil {
		open = func(dir string) fs.FS { return protocol.NewSafeDirFS(dir, protocol.MaxConfigBytes) }
	}
	levels, err := execconfig.Levels(open(req.ProjectDir), b.Configs, req.PipelineUUID, blockUUID(req), req.ExecutorConfig)
	if err != nil {
		return nil, &ConfigError{err}
	}
	env := b.env(pod, req)
	fromEnv, _ := env(execconfig.ConfigFileEnv)
	if name := execconfig.ConfigFile(levels, fromEnv); name != "" {
		root := path.Dir(req.ProjectDir)
		file, err := execconfig.FileLevel(open(root), root, name)
		if err != nil {
			return nil, &ConfigError{err}
		}
		levels = append([]execconfig.Level{file}, levels...)
	}
	cfg, err := execconfig.Resolve(levels, execconfig.Vars{
		Env:         env,
		Globals:     req.Variables,
		TriggerName: req.TriggerName,
	})
	if err != nil {
		return nil, &ConfigError{err}
	}
	return cfg, nil
}

// FromConfig builds the Job from the server pod and a resolved config;
// it reads nothing.
func (b Builder) FromConfig(pod *corev1.Pod, cfg *execconfig.Config, req *protocol.Request) (*batchv1.Job, error) {
	job, err := Job(Input{Pod: pod, Config: cfg, Request: req, Settings: b.Settings})
	if err != nil {
		var setup *SetupError
		if errors.As(err, &setup) {
			return nil, fmt.Errorf("build job for %s: %w", req.ID, err)
		}
		return nil, &ConfigError{err}
	}
	return job, nil
}

func blockUUID(req *protocol.Request) string {
	if req.Kind == protocol.KindBlock {
		return req.BlockUUID
	}
	return ""
}

// env resolves env_var() in templates as Mage would: the values the Mage
// process sent with the request (its real environment, envFrom and
// valueFrom included), else the Mage container's literal env. Never the
// agent's own environment, which holds the agent's credentials.
func (b Builder) env(pod *corev1.Pod, req *protocol.Request) func(string) (string, bool) {
	declared := map[string]string{}
	if c, err := MageContainer(pod, b.Settings); err == nil {
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				declared[e.Name] = e.Value
			}
		}
	}
	return func(name string) (string, bool) {
		if v, ok := req.Env[name]; ok {
			return v, true
		}
		v, ok := declared[name]
		return v, ok
	}
}
