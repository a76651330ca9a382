package kube

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/magekube/magekube/pkg/buildinfo"
)

// Options choose the cluster and the client's rate limits.
type Options struct {
	// Kubeconfig is a kubeconfig file, or files joined as KUBECONFIG joins
	// them (":"); empty means in-cluster config, then $KUBECONFIG and
	// ~/.kube/config.
	Kubeconfig string
	// Context is the kubeconfig context (empty: its current one).
	Context string
	// QPS and Burst bound the client's request rate. The agent makes a few
	// calls per run (create, and on failure a pod list), so the defaults
	// leave room for bursts of runs without flooding the API server.
	QPS   float32
	Burst int
	// UserAgent names the component in the API server's logs (default
	// magekube-agent/<version>).
	UserAgent string
	// Outages, when set, observes every request (see Outages).
	Outages *Outages
}

// Config returns a REST config for the options.
func Config(o Options) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	fromFiles := func() (*rest.Config, error) {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		if o.Kubeconfig != "" {
			rules.Precedence = filepath.SplitList(o.Kubeconfig)
		}
		return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: o.Context}).ClientConfig()
	}
	if o.Kubeconfig == "" && o.Context == "" {
		cfg, err = rest.InClusterConfig()
		if errors.Is(err, rest.ErrNotInCluster) {
			cfg, err = fromFiles()
		}
	} else {
		cfg, err = fromFiles()
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client config: %w", err)
	}
	cfg.QPS, cfg.Burst = o.QPS, o.Burst
	// Protobuf, as Kubernetes' own controllers speak: cheaper to encode and
	// decode than JSON for the API server and for the informers' watches.
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	cfg.UserAgent = o.UserAgent
	if cfg.UserAgent == "" { // the API server's audit log names the agent
		cfg.UserAgent = "magekube-agent/" + buildinfo.Version
	}
	if o.Outages != nil {
		cfg.Wrap(o.Outages.Wrap)
	}
	return cfg, nil
}

// Client returns a clientset for the options.
func Client(o Options) (kubernetes.Interface, error) {
	cfg, err := Config(o)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// OwnPod reads the pod the agent runs in (KUBE_NAMESPACE/KUBE_POD_NAME).
func OwnPod(ctx context.Context, c kubernetes.Interface, namespace, name string) (*corev1.Pod, error) {
	if namespace == "" || name == "" {
		return nil, errors.New("own pod unknown: set KUBE_POD_NAME and KUBE_NAMESPACE (downward API) or --pod-name and --pod-namespace")
	}
	pod, err := c.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("read own pod %s/%s: %w", namespace, name, err)
	}
	return pod, nil
}
