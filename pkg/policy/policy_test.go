package policy_test

import (
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/magekube/magekube/pkg/jobspec"
	"github.com/magekube/magekube/pkg/policy"
	"github.com/magekube/magekube/pkg/protocol"
)

// serverPod is the Mage server pod as deploy/manifests lays it out: the
// pod's service account is the agent's, automount is off, and only the
// agent container mounts its projected token.
const serverPod = `
metadata: {name: mage-0, namespace: mage}
spec:
  serviceAccountName: magekube-agent
  automountServiceAccountToken: false
  securityContext: {runAsUser: 1000, runAsNonRoot: true, fsGroup: 1000, seccompProfile: {type: RuntimeDefault}}
  tolerations: [{key: mage, operator: Exists}]
  containers:
  - name: mage
    image: mageai/mageai:0.9.80
    env:
    - {name: DB_PASSWORD, valueFrom: {secretKeyRef: {name: mage-db, key: password}}}
    envFrom: [{secretRef: {name: mage-env}}]
    securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {add: [NET_BIND_SERVICE], drop: [ALL]}}
    volumeMounts:
    - {name: mage-fs, mountPath: /home/src}
    - {name: data, mountPath: /data, readOnly: true}
    - {name: shared, mountPath: /shared/projects, subPath: projects}
    - {name: shared, mountPath: /shared/conf, subPath: conf, readOnly: true}
  - name: magekube-agent
    image: magekube/agent:test
    securityContext: {runAsUser: 65532}
    volumeMounts:
    - {name: mage-fs, mountPath: /home/src}
    - {name: magekube-agent-token, mountPath: /var/run/secrets/kubernetes.io/serviceaccount, readOnly: true}
    - {name: agent-config, mountPath: /etc/magekube}
    - {name: agent-creds, mountPath: /etc/magekube/creds}
  - name: proxy
    image: proxy
    volumeMounts: [{name: proxy-creds, mountPath: /creds}]
  volumes:
  - {name: mage-fs, persistentVolumeClaim: {claimName: mage-fs}}
  - {name: data, hostPath: {path: /srv/data}}
  - {name: shared, persistentVolumeClaim: {claimName: shared}}
  - {name: magekube-agent-token, projected: {sources: [{serviceAccountToken: {path: token}}]}}
  - {name: agent-config, configMap: {name: magekube-agent}}
  - {name: agent-creds, secret: {secretName: magekube-agent-creds}}
  - {name: proxy-creds, secret: {secretName: proxy-creds}}
`

func TestViolations(t *testing.T) {
	t.Parallel()
	pod := loadServerPod(t)
	settings := jobspec.Settings{AgentContainer: "magekube-agent", RunnerImage: "magekube/runner:test"}
	for _, tc := range []struct {
		name   string
		policy policy.Policy
		config string // the request's executor_config, YAML
		want   []string
	}{
		{"inherited is fine", policy.Policy{}, `{}`, nil},
		{"resources and an allowed GPU toleration are fine", policy.Policy{Tolerations: []string{"nvidia.com/gpu"}},
			`{resource_limits: {memory: 1Gi}, pod: {tolerations: [{key: nvidia.com/gpu, operator: Exists}]}}`, nil},
		{"a narrower form of the server pod's toleration is fine", policy.Policy{},
			`{pod: {tolerations: [{key: mage, operator: Equal, value: x, effect: NoSchedule}]}}`, nil},
		{"tolerating a lost node forever is bounded, not refused", policy.Policy{},
			`{pod: {tolerations: [{key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute}]}}`, nil},
		{"an emptyDir sharing a server volume's name is the config's own", policy.Policy{},
			`{pod: {volumes: [{name: agent-config, emptyDir: {}}]}, container: {volume_mounts: [{name: agent-config, mountPath: /c}]}}`, nil},
		{"new emptyDir and configMap volumes are fine", policy.Policy{},
			`{pod: {volumes: [{name: tmp, emptyDir: {}}, {name: cfg, configMap: {name: c}}]}, container: {volume_mounts: [{name: tmp, mountPath: /tmp}, {name: cfg, mountPath: /cfg}]}}`, nil},

		// The token split.
		{"the agent's service account", policy.Policy{ServiceAccounts: []string{"*"}},
			`{service_account_name: magekube-agent}`, []string{`service_account_name: "magekube-agent" is the server pod's service account, whose token only the agent container holds`}},
		{"the agent's token volume", policy.Policy{VolumeTypes: []string{"*"}},
			`{container: {volume_mounts: [{name: magekube-agent-token, mountPath: /t}]}}`, []string{`volume "magekube-agent-token": mounted by the agent container only`}},
		{"the agent's token under another name", policy.Policy{VolumeTypes: []string{"*"}},
			`{pod: {volumes: [{name: t, projected: {sources: [{serviceAccountToken: {path: token}}]}}]}, container: {volume_mounts: [{name: t, mountPath: /t}]}}`,
			[]string{`volume "t": a service-account token`}},
		{"a new token volume", policy.Policy{VolumeTypes: []string{"*"}},
			`{pod: {volumes: [{name: t, projected: {sources: [{serviceAccountToken: {path: token, audience: vault}}]}}]}, container: {volume_mounts: [{name: t, mountPath: /t}]}}`,
			[]string{`volume "t": a service-account token`}},
		{"the agent's other volume", policy.Policy{VolumeTypes: []string{"*"}},
			`{container: {volume_mounts: [{name: agent-creds, mountPath: /x}]}}`, []string{`volume "agent-creds": mounted by the agent container only`}},
		{"a configMap the agent mounts grants nothing", policy.Policy{},
			`{container: {volume_mounts: [{name: agent-config, mountPath: /x}]}}`, nil},
		{"another sidecar's volume", policy.Policy{VolumeTypes: []string{"*"}},
			`{container: {volume_mounts: [{name: proxy-creds, mountPath: /x}]}}`, []string{`volume "proxy-creds": the Mage container "mage" does not mount it`}},
		{"another service account", policy.Policy{},
			`{service_account_name: admin}`, []string{`service_account_name: "admin" is neither "default" nor the Mage container's`}},
		{"another service account allowed", policy.Policy{ServiceAccounts: []string{"etl"}}, `{service_account_name: etl}`, nil},

		// Volumes and secrets.
		{"a new host path", policy.Policy{},
			`{pod: {volumes: [{name: root, hostPath: {path: /}}]}, container: {volume_mounts: [{name: root, mountPath: /host}]}}`, []string{`volume "root": host path /`}},
		{"a read-only host path made writable", policy.Policy{HostPaths: true},
			`{container: {volume_mounts: [{name: data, mountPath: /data}]}}`, []string{`the Mage container mounts "data" read-only`}},
		{"the same host path under a new name, writable", policy.Policy{},
			`{pod: {volumes: [{name: d2, hostPath: {path: /srv/data}}]}, container: {volume_mounts: [{name: d2, mountPath: /d2}]}}`, []string{`the Mage container mounts "data" read-only`}},
		{"another claim", policy.Policy{},
			`{pod: {volumes: [{name: other, persistentVolumeClaim: {claimName: prod-db}}]}, container: {volume_mounts: [{name: other, mountPath: /o}]}}`,
			[]string{`volume "other": a persistentVolumeClaim volume the Mage container does not mount; allow the type with --allow-volume-type=persistentVolumeClaim`}},
		{"another claim allowed", policy.Policy{VolumeTypes: []string{"persistentVolumeClaim"}},
			`{pod: {volumes: [{name: other, persistentVolumeClaim: {claimName: prod-db}}]}, container: {volume_mounts: [{name: other, mountPath: /o}]}}`, nil},
		{"an NFS volume", policy.Policy{},
			`{pod: {volumes: [{name: nv, nfs: {server: nfs, path: /}}]}, container: {volume_mounts: [{name: nv, mountPath: /n}]}}`, []string{`a nfs volume`}},
		{"a CSI volume", policy.Policy{},
			`{pod: {volumes: [{name: cv, csi: {driver: secrets-store}}]}, container: {volume_mounts: [{name: cv, mountPath: /n}]}}`, []string{`a csi volume`}},
		{"a secret volume the Mage container lacks", policy.Policy{},
			`{pod: {volumes: [{name: s, secret: {secretName: prod-admin}}]}, container: {volume_mounts: [{name: s, mountPath: /s}]}}`, []string{`Secret "prod-admin" is not referenced by the Mage container`}},
		{"a secret volume of the Mage container's secret", policy.Policy{},
			`{pod: {volumes: [{name: s, secret: {secretName: mage-db}}]}, container: {volume_mounts: [{name: s, mountPath: /s}]}}`, nil},
		{"a projected secret", policy.Policy{},
			`{pod: {volumes: [{name: s, projected: {sources: [{secret: {name: prod-admin}}]}}]}, container: {volume_mounts: [{name: s, mountPath: /s}]}}`, []string{`Secret "prod-admin"`}},
		{"secretKeyRef of another secret", policy.Policy{},
			`{container: {env: [{name: X, valueFrom: {secretKeyRef: {name: prod-admin, key: k}}}]}}`, []string{`env X: Secret "prod-admin"`}},
		{"envFrom another secret", policy.Policy{},
			`{container: {env_from: [{secretRef: {name: prod-admin}}]}}`, []string{`envFrom: Secret "prod-admin"`}},
		{"envFrom another secret allowed", policy.Policy{Secrets: []string{"prod-admin"}}, `{container: {env_from: [{secretRef: {name: prod-admin}}]}}`, nil},

		// Security options and privilege, against the Mage container alone.
		{"privileged", policy.Policy{},
			`{container: {security_context: {privileged: true, allowPrivilegeEscalation: false}}}`, []string{`privileged, which the Mage container is not`}},
		{"a capability the Mage container lacks", policy.Policy{},
			`{container: {security_context: {allowPrivilegeEscalation: false, capabilities: {add: [NET_BIND_SERVICE, SYS_ADMIN]}}}}`, []string{`capabilities.add SYS_ADMIN`}},
		{"the Mage container's capability", policy.Policy{},
			`{container: {security_context: {allowPrivilegeEscalation: false, capabilities: {add: [NET_BIND_SERVICE]}}}}`, nil},
		{"privilege escalation", policy.Policy{},
			`{container: {security_context: {allowPrivilegeEscalation: true}}}`, []string{`allowPrivilegeEscalation is not false`}},
		{"root", policy.Policy{},
			`{container: {security_context: {runAsUser: 0, allowPrivilegeEscalation: false}}}`, []string{`may run as root`}},
		{"a pod security context without a user keeps the server pod's", policy.Policy{},
			`{pod: {security_context: {seLinuxOptions: {level: "s0"}}}}`, []string{`seLinuxOptions differ`}},
		{"root allowed", policy.Policy{SecurityOptions: true},
			`{container: {security_context: {runAsUser: 0, allowPrivilegeEscalation: false}}}`, nil},
		{"unconfined seccomp", policy.Policy{},
			`{pod: {security_context: {runAsUser: 1000, seccompProfile: {type: Unconfined}}}}`, []string{`"mage-job-container": seccompProfile Unconfined`}},
		{"unconfined AppArmor", policy.Policy{},
			`{container: {security_context: {allowPrivilegeEscalation: false, appArmorProfile: {type: Unconfined}}}}`, []string{`appArmorProfile Unconfined`}},
		{"SELinux options", policy.Policy{},
			`{container: {security_context: {allowPrivilegeEscalation: false, seLinuxOptions: {level: "s0:c1"}}}}`, []string{`seLinuxOptions differ`}},
		{"control-plane toleration", policy.Policy{},
			`{pod: {tolerations: [{key: node-role.kubernetes.io/control-plane, operator: Exists}]}}`, []string{`the taint "node-role.kubernetes.io/control-plane"`}},
		{"every taint", policy.Policy{},
			`{pod: {tolerations: [{operator: Exists}]}}`, []string{`a toleration of every taint`}},
		{"control plane allowed", policy.Policy{ControlPlane: true}, `{pod: {tolerations: [{operator: Exists}]}}`, nil},
		{"other namespace", policy.Policy{}, `{namespace: other}`, []string{`namespace "other"`}},

		// A config only tightens: the security context merges field by
		// field, and the result is compared with the Mage container's.
		{"privileged: false keeps the Mage container's drops and read-only root", policy.Policy{},
			`{container: {security_context: {privileged: false}}}`, nil},
		{"a pod user keeps the server pod's seccomp", policy.Policy{},
			`{pod: {security_context: {runAsUser: 1001, runAsNonRoot: true}}}`, nil},
		{"a writable root", policy.Policy{},
			`{container: {security_context: {readOnlyRootFilesystem: false}}}`, []string{`readOnlyRootFilesystem is not true`}},
		{"fewer dropped capabilities", policy.Policy{},
			`{container: {security_context: {capabilities: {drop: [NET_RAW]}}}}`, []string{`capabilities.drop lacks ALL`}},
		{"runAsGroup 0", policy.Policy{},
			`{pod: {security_context: {runAsGroup: 0}}}`, []string{`runAsGroup 0`}},
		{"new supplemental groups", policy.Policy{},
			`{pod: {security_context: {supplementalGroups: [0, 65532]}}}`, []string{`supplementalGroups: 0`, `supplementalGroups: 65532`}},
		{"the agent's group as fsGroup", policy.Policy{},
			`{pod: {security_context: {fsGroup: 65532, fsGroupChangePolicy: Always}}}`, []string{`fsGroup: 65532`, `fsGroupChangePolicy: Always`}},
		{"sysctls", policy.Policy{},
			`{pod: {security_context: {sysctls: [{name: kernel.shm_rmid_forced, value: "0"}]}}}`, []string{`sysctls: kernel.shm_rmid_forced=0`}},
		{"a Localhost seccomp profile", policy.Policy{},
			`{pod: {security_context: {seccompProfile: {type: Localhost, localhostProfile: allow-all.json}}}}`, []string{`seccompProfile Localhost "allow-all.json"`}},
		{"new group ids allowed", policy.Policy{SecurityOptions: true},
			`{pod: {security_context: {runAsGroup: 0, supplementalGroups: [0], fsGroup: 0}}}`, nil},
		{"the agent's user", policy.Policy{SecurityOptions: true},
			`{container: {security_context: {runAsUser: 65532}}}`, []string{`runAsUser 65532 is the agent container's user`}},
		{"a main container named like the runner's is checked", policy.Policy{},
			`{container: {name: magekube-runner-install, security_context: {runAsUser: 0}}}`, []string{`"magekube-runner-install": may run as root`}},

		// Mounts by (volume, subPath prefix, read-only).
		{"a part of a subPath the Mage container mounts", policy.Policy{},
			`{container: {volume_mounts: [{name: shared, mountPath: /p, subPath: projects/etl}]}}`, nil},
		{"the whole volume where the Mage container mounts a subPath", policy.Policy{},
			`{container: {volume_mounts: [{name: shared, mountPath: /all}]}}`, []string{`subPath "" of volume "shared" is wider`}},
		{"a sibling subPath through ..", policy.Policy{},
			`{container: {volume_mounts: [{name: shared, mountPath: /x, subPath: projects/../secrets}]}}`, []string{`is wider`}},
		{"a read-only subPath mounted read-write", policy.Policy{},
			`{container: {volume_mounts: [{name: shared, mountPath: /c, subPath: conf}]}}`, []string{`mounts "shared" read-only`}},
		{"a subPathExpr", policy.Policy{},
			`{container: {volume_mounts: [{name: mage-fs, mountPath: /e, subPathExpr: "$(POD)"}]}}`, []string{`subPathExpr "$(POD)"`}},
		{"a subPathExpr allowed", policy.Policy{SubPathExpr: true},
			`{container: {volume_mounts: [{name: mage-fs, mountPath: /e, subPathExpr: "$(POD)"}]}}`, nil},

		// Scheduling and credentials the server pod lacks.
		{"a priority class", policy.Policy{},
			`{pod: {priority_class_name: system-cluster-critical}}`, []string{`--allow-priority-class=system-cluster-critical`}},
		{"a priority class allowed", policy.Policy{PriorityClasses: []string{"batch"}}, `{pod: {priority_class_name: batch}}`, nil},
		{"an image pull secret", policy.Policy{},
			`{pod: {image_pull_secrets: [regcred]}}`, []string{`--allow-pull-secret=regcred`}},
		{"a pod certificate", policy.Policy{VolumeTypes: []string{"*"}},
			`{pod: {volumes: [{name: pc, projected: {sources: [{podCertificate: {signerName: x/y, keyType: ED25519, credentialBundlePath: c}}]}}]}, container: {volume_mounts: [{name: pc, mountPath: /pc}]}}`,
			[]string{`volume "pc": a pod certificate`}},
		{"tolerations of other tenants' taints", policy.Policy{},
			`{pod: {tolerations: [{key: node-role.kubernetes.io/etcd, operator: Exists}, {key: CriticalAddonsOnly, operator: Exists}, {key: node.kubernetes.io/unschedulable, operator: Exists}, {key: dedicated, operator: Equal, value: team-b}]}}`,
			[]string{`"node-role.kubernetes.io/etcd"`, `"CriticalAddonsOnly"`, `"node.kubernetes.io/unschedulable"`, `--allow-toleration=dedicated`}},

		// The run's key.
		{"the controller-uid label in env", policy.Policy{},
			`{container: {env: [{name: K, valueFrom: {fieldRef: {fieldPath: "metadata.labels['batch.kubernetes.io/controller-uid']"}}}]}}`, []string{`env K: metadata.labels['batch.kubernetes.io/controller-uid'] holds the run's key`}},
		{"every label through the downward API", policy.Policy{},
			`{pod: {volumes: [{name: info, downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]}}]}, container: {volume_mounts: [{name: info, mountPath: /info}]}}`,
			[]string{`volume "info": downward API metadata.labels holds the run's key`}},
		{"other namespace allowed", policy.Policy{Namespaces: []string{"other"}}, `{namespace: other}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var cfg map[string]any
			if err := yaml.Unmarshal([]byte(tc.config), &cfg); err != nil {
				t.Fatal(err)
			}
			req := &protocol.Request{APIVersion: protocol.APIVersion, ID: "r1", Kind: protocol.KindBlock, ProjectDir: "/p",
				PipelineUUID: "etl", BlockUUID: "load", BlockRunID: 1, ExecutorConfig: cfg}
			b := jobspec.Builder{Settings: settings, ProjectFS: emptyProject}
			job, err := b.Build(pod, req)
			if err != nil {
				t.Fatalf("build: %v", err)
			}
			got := tc.policy.Violations(pod, settings, job)
			if len(got) != len(tc.want) {
				t.Fatalf("violations:\n%s\nwant %d: %q", strings.Join(got, "\n"), len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("violation %q lacks %q", got[i], w)
				}
			}
		})
	}
}

func TestJobOfTokenSplitPodHasNoToken(t *testing.T) {
	t.Parallel()
	pod := loadServerPod(t)
	settings := jobspec.Settings{AgentContainer: "magekube-agent", RunnerImage: "r"}
	req := &protocol.Request{APIVersion: protocol.APIVersion, ID: "r1", Kind: protocol.KindBlock, ProjectDir: "/p", PipelineUUID: "etl", BlockUUID: "load", BlockRunID: 1}
	job, err := jobspec.Builder{Settings: settings, ProjectFS: emptyProject}.Build(pod, req)
	if err != nil {
		t.Fatal(err)
	}
	spec := job.Spec.Template.Spec
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken || spec.ServiceAccountName != "default" {
		t.Errorf("automount %v, service account %q; want false and \"default\"", spec.AutomountServiceAccountToken, spec.ServiceAccountName)
	}
	for _, v := range spec.Volumes {
		if jobspec.TokenVolume(v) || v.Name == "agent-creds" || v.Name == "proxy-creds" {
			t.Errorf("job has volume %q", v.Name)
		}
	}

	// A pod whose Mage container holds the pod's token may pass it on.
	pod.Spec.Containers[0].VolumeMounts = append(pod.Spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "magekube-agent-token", MountPath: "/t"})
	req.ExecutorConfig = map[string]any{"service_account_name": "magekube-agent"}
	job, err = jobspec.Builder{Settings: settings, ProjectFS: emptyProject}.Build(pod, req)
	if err != nil {
		t.Fatal(err)
	}
	if v := (policy.Policy{}).Violations(pod, settings, job); len(v) > 0 {
		t.Errorf("violations %q for a Mage container holding the token itself", v)
	}
}

// TestCloudTokenIsNoKubernetesCredential: EKS's IRSA webhook mounts a
// token of the pod's service account, for the audience sts.amazonaws.com,
// into every container, the Mage container too. That is no Kubernetes
// credential: the agent's service account stays out of reach of a Job.
func TestCloudTokenIsNoKubernetesCredential(t *testing.T) {
	t.Parallel()
	pod := loadServerPod(t)
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "aws-iam-token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: "sts.amazonaws.com", Path: "token"}}},
	}}})
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "aws-iam-token", MountPath: "/var/run/secrets/eks.amazonaws.com/serviceaccount", ReadOnly: true})
		c.Env = append(c.Env, corev1.EnvVar{Name: "AWS_ROLE_ARN", Value: "arn:aws:iam::111122223333:role/mage"})
	}
	if jobspec.HoldsToken(pod, &pod.Spec.Containers[0]) {
		t.Fatal("HoldsToken: an sts.amazonaws.com token counted as a Kubernetes credential")
	}
	settings := jobspec.Settings{AgentContainer: "magekube-agent", RunnerImage: "r"}
	req := &protocol.Request{APIVersion: protocol.APIVersion, ID: "r1", Kind: protocol.KindBlock, ProjectDir: "/p", PipelineUUID: "etl", BlockUUID: "load", BlockRunID: 1,
		ExecutorConfig: map[string]any{"service_account_name": "magekube-agent"}}
	job, err := jobspec.Builder{Settings: settings, ProjectFS: emptyProject}.Build(pod, req)
	if err != nil {
		t.Fatal(err)
	}
	v := (policy.Policy{ServiceAccounts: []string{"*"}}).Violations(pod, settings, job)
	if len(v) == 0 || !strings.Contains(strings.Join(v, "\n"), "whose token only the agent container holds") {
		t.Errorf("violations %q, want the agent's service account refused", v)
	}
	req.ExecutorConfig = nil
	job, err = jobspec.Builder{Settings: settings, ProjectFS: emptyProject}.Build(pod, req)
	if err != nil {
		t.Fatal(err)
	}
	spec := job.Spec.Template.Spec
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken || spec.ServiceAccountName != "default" {
		t.Errorf("automount %v, service account %q; want false and \"default\"", spec.AutomountServiceAccountToken, spec.ServiceAccountName)
	}
	if v := (policy.Policy{}).Violations(pod, settings, job); len(v) > 0 {
		t.Errorf("violations %q of the Job inheriting the Mage container's cloud token", v)
	}
}

func emptyProject(string) fs.FS { return fstest.MapFS{} }

func loadServerPod(t *testing.T) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{}
	if err := yaml.UnmarshalStrict([]byte(serverPod), pod); err != nil {
		t.Fatal(err)
	}
	return pod
}

// TestConfigOnlyTightens: a config's security context merges over the
// Mage container's field by field, so setting one field keeps every
// other restriction (before, it replaced the whole context: the Job got
// the runtime's default capabilities, a writable root, and no seccomp).
func TestConfigOnlyTightens(t *testing.T) {
	t.Parallel()
	pod := loadServerPod(t)
	settings := jobspec.Settings{AgentContainer: "magekube-agent", RunnerImage: "r"}
	req := &protocol.Request{APIVersion: protocol.APIVersion, ID: "r1", Kind: protocol.KindBlock, ProjectDir: "/p", PipelineUUID: "etl", BlockUUID: "load", BlockRunID: 1,
		ExecutorConfig: map[string]any{
			"container": map[string]any{"security_context": map[string]any{"privileged": false}},
			"pod":       map[string]any{"security_context": map[string]any{"runAsUser": 1001, "runAsNonRoot": true}},
		}}
	job, err := jobspec.Builder{Settings: settings, ProjectFS: emptyProject}.Build(pod, req)
	if err != nil {
		t.Fatal(err)
	}
	spec := job.Spec.Template.Spec
	sc := spec.Containers[0].SecurityContext
	if sc == nil || sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Privileged == nil || *sc.Privileged {
		t.Errorf("container security context: %+v", sc)
	}
	psc := spec.SecurityContext
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault ||
		psc.FSGroup == nil || *psc.FSGroup != 1000 || psc.RunAsUser == nil || *psc.RunAsUser != 1001 {
		t.Errorf("pod security context: %+v", psc)
	}
	init := spec.InitContainers[0].SecurityContext
	if init.RunAsNonRoot == nil || !*init.RunAsNonRoot || init.SeccompProfile == nil || init.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("the runner's init container does not meet PodSecurity restricted: %+v", init)
	}
}

// TestKeyReachable: a block can read the non-dumpable runner's key only
// with CAP_SYS_PTRACE or CAP_SYS_ADMIN (or privileged), inherited from the
// Mage container or granted by --allow-privileged.
func TestKeyReachable(t *testing.T) {
	t.Parallel()
	pod := loadServerPod(t)
	mage := &pod.Spec.Containers[0]
	if (policy.Policy{}).KeyReachable(pod, mage) {
		t.Error("reachable for a Mage container without ptrace")
	}
	if !(policy.Policy{Privileged: true}).KeyReachable(pod, mage) {
		t.Error("not reachable with --allow-privileged")
	}
	mage.SecurityContext.Capabilities.Add = append(mage.SecurityContext.Capabilities.Add, "CAP_SYS_PTRACE")
	if !(policy.Policy{}).KeyReachable(pod, mage) {
		t.Error("not reachable for a Mage container adding CAP_SYS_PTRACE")
	}
}
