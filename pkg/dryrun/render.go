package dryrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/magekube/magekube/pkg/jobspec"
	"github.com/magekube/magekube/pkg/kube"
	"github.com/magekube/magekube/pkg/policy"
	"github.com/magekube/magekube/pkg/protocol"
)

// Options for one render.
type Options struct {
	RequestFile  string
	PodFile      string
	PodName      string
	PodNamespace string
	Kube         kube.Options
	Settings     jobspec.Settings
	Policy       policy.Policy
}

// Run writes the Job for the request as YAML to out.
func Run(ctx context.Context, o Options, out io.Writer) error {
	data, err := protocol.ReadFileSafe(o.RequestFile, protocol.MaxRequestBytes)
	if err != nil {
		return fmt.Errorf("read request: %w", err)
	}
	req, err := protocol.ParseRequest(data)
	if err != nil {
		return fmt.Errorf("%s: invalid request:\n%w", o.RequestFile, err)
	}
	pod, err := loadPod(ctx, o)
	if err != nil {
		return err
	}
	job, err := jobspec.Builder{Settings: o.Settings}.Build(pod, req)
	var cfgErr *jobspec.ConfigError
	if errors.As(err, &cfgErr) {
		return fmt.Errorf("%s: invalid executor config:\n%w", o.RequestFile, err)
	}
	if err != nil {
		return err
	}
	if v := o.Policy.Violations(pod, o.Settings, job); len(v) > 0 {
		return fmt.Errorf("%s: the agent would refuse this Job (PolicyDenied):\n%s", o.RequestFile, strings.Join(v, "\n"))
	}
	manifest, err := yaml.Marshal(job)
	if err != nil {
		return fmt.Errorf("encode job: %w", err)
	}
	_, err = out.Write(manifest)
	return err
}

func loadPod(ctx context.Context, o Options) (*corev1.Pod, error) {
	if o.PodFile != "" {
		data, err := os.ReadFile(o.PodFile)
		if err != nil {
			return nil, fmt.Errorf("read pod: %w", err)
		}
		pod := &corev1.Pod{}
		if err := yaml.UnmarshalStrict(data, pod); err != nil {
			return nil, fmt.Errorf("%s: not a Pod: %w", o.PodFile, err)
		}
		return pod, nil
	}
	client, err := kube.Client(o.Kube)
	if err != nil {
		return nil, err
	}
	return kube.OwnPod(ctx, client, o.PodNamespace, o.PodName)
}
