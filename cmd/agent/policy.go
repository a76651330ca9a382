package main

import (
	"github.com/urfave/cli/v2"

	"github.com/magekube/magekube/pkg/policy"
)

// policyFlags are the --allow-… flags, shared by run and render so that a
// render refuses exactly what the agent would.
func policyFlags(p *policy.Policy) []cli.Flag {
	list := func(dst *[]string) func(*cli.Context, []string) error {
		return func(_ *cli.Context, v []string) error { *dst = v; return nil }
	}
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "allow-namespace", EnvVars: env("MAGEKUBE_ALLOW_NAMESPACE"), Action: list(&p.Namespaces),
			Usage: "namespaces a run's config may put its Job in besides the server pod's (\"*\": any)"},
		&cli.StringSliceFlag{Name: "allow-service-account", EnvVars: env("MAGEKUBE_ALLOW_SERVICE_ACCOUNT"), Action: list(&p.ServiceAccounts),
			Usage: "service accounts a run's config may use besides \"default\" (\"*\": any); never the agent's own"},
		&cli.BoolFlag{Name: "allow-privileged", EnvVars: env("MAGEKUBE_ALLOW_PRIVILEGED"), Destination: &p.Privileged,
			Usage: "let a run's config ask for privileged containers, capabilities or privilege escalation the Mage container lacks"},
		&cli.BoolFlag{Name: "allow-host-path", EnvVars: env("MAGEKUBE_ALLOW_HOST_PATH"), Destination: &p.HostPaths,
			Usage: "let a run's config add hostPath volumes the Mage container does not mount"},
		&cli.StringSliceFlag{Name: "allow-volume-type", EnvVars: env("MAGEKUBE_ALLOW_VOLUME_TYPE"), Action: list(&p.VolumeTypes),
			Usage: "volume types a run's config may add beyond emptyDir, configMap and downwardAPI, e.g. persistentVolumeClaim, csi, nfs, secret (\"*\": any but service-account tokens)"},
		&cli.StringSliceFlag{Name: "allow-secret", EnvVars: env("MAGEKUBE_ALLOW_SECRET"), Action: list(&p.Secrets),
			Usage: "Secrets a run's config may reference that the Mage container does not (\"*\": any)"},
		&cli.BoolFlag{Name: "allow-security-options", EnvVars: env("MAGEKUBE_ALLOW_SECURITY_OPTIONS"), Destination: &p.SecurityOptions,
			Usage: "let a run's config run as root, with a weaker seccomp or AppArmor profile, a writable root file system, other SELinux options, or group ids, fsGroup and sysctls the Mage container lacks"},
		&cli.BoolFlag{Name: "allow-control-plane", EnvVars: env("MAGEKUBE_ALLOW_CONTROL_PLANE"), Destination: &p.ControlPlane,
			Usage: "let a run's config tolerate control-plane taints (or every taint)"},
		&cli.StringSliceFlag{Name: "allow-toleration", EnvVars: env("MAGEKUBE_ALLOW_TOLERATION"), Action: list(&p.Tolerations),
			Usage: "taint keys a run's config may tolerate that the server pod does not, e.g. nvidia.com/gpu (\"*\": any)"},
		&cli.StringSliceFlag{Name: "allow-priority-class", EnvVars: env("MAGEKUBE_ALLOW_PRIORITY_CLASS"), Action: list(&p.PriorityClasses),
			Usage: "priority classes a run's config may use besides the server pod's (\"*\": any)"},
		&cli.StringSliceFlag{Name: "allow-pull-secret", EnvVars: env("MAGEKUBE_ALLOW_PULL_SECRET"), Action: list(&p.PullSecrets),
			Usage: "image pull secrets a run's config may add besides the server pod's (\"*\": any)"},
		&cli.BoolFlag{Name: "allow-subpath-expr", EnvVars: env("MAGEKUBE_ALLOW_SUBPATH_EXPR"), Destination: &p.SubPathExpr,
			Usage: "let a run's config mount a volume the Mage container mounts whole with a subPathExpr"},
	}
}
