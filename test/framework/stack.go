package framework

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ExampleStack is the example overlay the e2e suite and `make demo` deploy.
const ExampleStack = "deploy/manifests/examples/mage-stack"

// KindStack writes a kustomize overlay of the example stack into dir, as
// a user deploying it to kind does: namespace ns, the images built here
// under their own names, a hostPath PersistentVolume on shared (a
// directory every node mounts) for the stack's ReadWriteMany claim,
// since kind has no RWX provisioner, and Mage's database in PostgreSQL
// (a Deployment and Service "postgres"; MAGE_DATABASE_CONNECTION_URL on
// the Mage container, which its block Jobs inherit), as production users
// of Mage's k8s executor run it. The stack's Namespace object is dropped:
// ns is the caller's. Apply it with `kubectl apply -k dir`.
func KindStack(dir, repo, ns, shared string, e *Env) error {
	stack, err := filepath.Rel(dir, filepath.Join(repo, ExampleStack))
	if err != nil {
		return err
	}
	split := func(ref string) (string, string) {
		i := strings.LastIndex(ref, ":")
		return ref[:i], ref[i+1:]
	}
	mageName, mageTag := split(e.MageImage)
	agentName, agentTag := split(e.AgentImage)
	jaegerName, jaegerTag := split(e.JaegerImage)
	postgresName, postgresTag := split(e.PostgresImage)
	kustomization := fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: %[1]s
resources:
- %[2]s
- pv.yaml
- postgres.yaml
images:
- {name: mageai/mageai, newName: %[3]s, newTag: %[4]s}
- {name: ghcr.io/magekube/agent, newName: %[5]s, newTag: %[6]s}
- {name: jaegertracing/jaeger, newName: %[7]s, newTag: %[8]s}
- {name: postgres, newName: %[9]s, newTag: %[10]s}
patches:
- patch: |-
    $patch: delete
    apiVersion: v1
    kind: Namespace
    metadata:
      name: mage
- target: {kind: Deployment, name: mage}
  patch: |-
    - op: add
      path: /spec/template/spec/containers/0/env/-
      value: {name: MAGE_DATABASE_CONNECTION_URL, value: "%[11]s"}
    # Mage starts its scheduler once, at start: without its database then,
    # the server comes up and no pipeline run is ever started.
    - op: add
      path: /spec/template/spec/initContainers
      value:
      - name: wait-for-database
        image: postgres:15
        command: [sh, -c, "until /usr/lib/postgresql/15/bin/pg_isready -q -h postgres -U mage; do sleep 1; done"]
`, ns, stack, mageName, mageTag, agentName, agentTag, jaegerName, jaegerTag, postgresName, postgresTag, DatabaseURL)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(kustomization), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "postgres.yaml"), []byte(postgresYAML), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "pv.yaml"), []byte(ProjectPV(ns, shared)), 0o644)
}

// ProjectPV is a hostPath PersistentVolume on shared (a directory every
// kind node mounts) bound to the claim mage-fs of namespace ns: the
// ReadWriteMany project volume kind cannot provision.
func ProjectPV(ns, shared string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: PersistentVolume
metadata:
  name: %[1]s-mage-fs
spec:
  capacity: {storage: 10Gi}
  accessModes: [ReadWriteMany]
  storageClassName: standard
  persistentVolumeReclaimPolicy: Retain
  hostPath: {path: %[2]s, type: Directory}
  claimRef: {namespace: %[1]s, name: mage-fs}
`, ns, shared)
}

// ProjectClaim is the claim mage-fs that ProjectPV binds.
const ProjectClaim = `apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: mage-fs
spec:
  accessModes: [ReadWriteMany]
  storageClassName: standard
  resources:
    requests: {storage: 10Gi}
`

// Postgres is Mage's database for the kind tests with image (a Deployment
// and Service "postgres"; user, password and database "mage").
func Postgres(image string) string {
	return strings.ReplaceAll(postgresYAML, "image: postgres:15", "image: "+image)
}

// DatabaseURL is Postgres' database for MAGE_DATABASE_CONNECTION_URL.
const DatabaseURL = "postgresql+psycopg2://mage:mage@postgres:5432/mage"

// postgresYAML is Mage's database in the kind stack (test data only: an
// emptyDir, a fixed password).
const postgresYAML = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: postgres
  labels: {app.kubernetes.io/name: postgres}
spec:
  replicas: 1
  selector:
    matchLabels: {app.kubernetes.io/name: postgres}
  template:
    metadata:
      labels: {app.kubernetes.io/name: postgres}
    spec:
      automountServiceAccountToken: false
      containers:
      - name: postgres
        image: postgres:15
        env:
        - {name: POSTGRES_USER, value: mage}
        - {name: POSTGRES_PASSWORD, value: mage}
        - {name: POSTGRES_DB, value: mage}
        ports:
        - {name: postgres, containerPort: 5432}
        readinessProbe:
          exec: {command: [/usr/lib/postgresql/15/bin/pg_isready, -h, 127.0.0.1, -U, mage]}
          periodSeconds: 2
        volumeMounts:
        - {name: data, mountPath: /var/lib/postgresql/data}
      volumes:
      - name: data
        emptyDir: {}
---
apiVersion: v1
kind: Service
metadata:
  name: postgres
spec:
  selector: {app.kubernetes.io/name: postgres}
  ports:
  - {name: postgres, port: 5432, targetPort: postgres}
`
