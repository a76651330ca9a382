"""The fields test_parity.py compares between Mage's Job and the agent's,
and the differences that are intended, each with its reason. Run as
`python3 parity.py --markdown` for docs/config.md's table.

What magekube adds to every Job is taken out before comparing (ADDED);
what remains must match Mage field by field, or be listed in INTENDED.
"""
import json
import sys

# What the agent adds to every Job, never compared (README: Job construction).
ADDED = [
    ("the runner", "an init container copies the runner into an emptyDir (`magekube-bin`, mounted read-only at /magekube/bin); the container's command is `runner exec --run-dir … --` before Mage's own command"),
    ("run identity", "env `MAGEKUBE_RUN_ID`, `MAGEKUBE_POD_NAME`, `MAGEKUBE_RUN_KEY` (the result's seal) and `TRACEPARENT`; labels `app.kubernetes.io/managed-by`, `magekube.io/*` and annotations `magekube.io/*` on the Job and its pods"),
    ("a lost node's bound", "tolerations of `node.kubernetes.io/unreachable` and `node.kubernetes.io/not-ready` (NoExecute) for the agent's `--node-lost-after`, 30 s: Kubernetes evicts the pod of a lost node then and the run fails as `NodeLost`, instead of after the 300 s the API server gives every pod"),
]

# The node-loss taints whose tolerations the agent bounds (ADDED).
NODE_LOSS_TAINTS = ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")

# field → why magekube's Job differs from Mage's there.
INTENDED = {
    "spec.template.spec.automountServiceAccountToken": (
        "the token split: when the Mage container holds no service-account token, neither does the Job "
        "(Mage's Job mounts its service account's token)"),
    "spec.ttlSecondsAfterFinished": (
        "Mage deletes its Job as soon as it ends; magekube keeps it an hour by default "
        "(`job.ttl_seconds_after_finished` sets another value) so that `kubectl describe` and `logs` work after a failure"),
    "spec.template.spec.securityContext": (
        "magekube inherits the server pod's security context (a Job never runs as a user the Mage server "
        "does not); Mage's Job has none unless configured"),
    "container.workingDir": "magekube inherits the Mage container's working directory; Mage does not",
    "spec.template.spec.imagePullSecrets": (
        "Mage sends `pod.image_pull_secrets` as a single object where the API takes a list (the API server "
        "refuses that Job); magekube sends a list, and takes one name or several"),
    "container.resources": (
        "magekube merges levels deeply (a block's `resource_limits.memory` keeps the project's `cpu` limit) and "
        "combines `container.resources`, `resource_requests`/`resource_limits` and `container_config.resources` "
        "resource by resource in Mage's order of precedence, keeping what only one names (a GPU in "
        "`container.resources`); Mage replaces the whole list at each step"),
    "spec.template.spec.volumes": (
        "a config volume with the name of a server volume replaces it; Mage keeps both, and the API server "
        "refuses a pod with two volumes of one name"),
}

# field → (the release that made Mage's executor match, why older ones
# differ): differences of the older releases of the supported range only.
OLDER = {
    "spec.template.spec.nodeSelector": ("0.9.74", (
        "Mage before 0.9.74 replaces the config's `pod.node_selector` with the server pod's; magekube takes "
        "the config's, as Mage 0.9.74 and later do")),
    "spec.template.spec.schedulerName": ("0.9.74", (
        "Mage before 0.9.74 drops the config's `pod.scheduler_name`; magekube takes it, as Mage 0.9.74 and later do")),
}


def _release(version):
    return tuple(int(p) for p in version.split(".")[:3] if p.isdigit())


def intended(version):
    """INTENDED, and the differences of a Mage release older than a fix."""
    out = dict(INTENDED)
    for field, (fixed, why) in OLDER.items():
        if _release(version) < _release(fixed):
            out[field] = why
    return out


def _empty(v):
    return v in (None, {}, [], "")


def _norm(v):
    if isinstance(v, dict):
        out = {k: _norm(x) for k, x in v.items() if not _empty(_norm(x))}
        return out or None
    if isinstance(v, list):
        out = [_norm(x) for x in v]
        return out or None
    return v


def _sorted(items):
    return sorted((json.dumps(_norm(i), sort_keys=True) for i in items or []))


def _strip_magekube(m):
    return {k: v for k, v in (m or {}).items() if not (k.startswith("magekube.io/") or k == "app.kubernetes.io/managed-by")} or None


def fields(job, namespace, command):
    """The comparable fields of a Job (a dict as the API server takes it)."""
    spec = job.get("spec") or {}
    pod = (spec.get("template") or {}).get("spec") or {}
    main = (pod.get("containers") or [{}])[0]
    env = {}
    for e in main.get("env") or []:  # a later entry of the same name wins, as in the kubelet
        if not (e["name"].startswith("MAGEKUBE_") or e["name"] == "TRACEPARENT"):
            env[e["name"]] = _norm({k: v for k, v in e.items() if k != "name"})
    cmd = (main.get("command") or []) + (main.get("args") or [])  # what runs
    if "--" in cmd and cmd[0].startswith("/magekube/bin/"):
        cmd = cmd[cmd.index("--") + 1:]
    mounts = [m for m in main.get("volumeMounts") or [] if m.get("name") != "magekube-bin"]
    mounted = {m["name"] for m in mounts}
    volumes = [v for v in pod.get("volumes") or [] if v.get("name") in mounted]
    out = {
        "metadata.name": job["metadata"]["name"],
        "metadata.namespace": namespace,
        "metadata.labels": _strip_magekube(job["metadata"].get("labels")),
        "metadata.annotations": _strip_magekube(job["metadata"].get("annotations")),
        "spec.backoffLimit": spec.get("backoffLimit"),
        "spec.activeDeadlineSeconds": spec.get("activeDeadlineSeconds"),
        "spec.ttlSecondsAfterFinished": spec.get("ttlSecondsAfterFinished"),
        "spec.template.metadata.labels": _strip_magekube(((spec.get("template") or {}).get("metadata") or {}).get("labels")),
        "spec.template.spec.serviceAccountName": pod.get("serviceAccountName") or "default",
        "spec.template.spec.automountServiceAccountToken": pod.get("automountServiceAccountToken"),
        "spec.template.spec.nodeSelector": _norm(pod.get("nodeSelector")),
        "spec.template.spec.tolerations": _sorted(
            t for t in pod.get("tolerations") or []
            if not (t.get("key") in NODE_LOSS_TAINTS and t.get("effect") == "NoExecute" and t.get("tolerationSeconds") is not None)
        ) or None,
        "spec.template.spec.schedulerName": pod.get("schedulerName"),
        "spec.template.spec.imagePullSecrets": _sorted(pod.get("imagePullSecrets")) or None,
        "spec.template.spec.affinity": _norm(pod.get("affinity")),
        "spec.template.spec.securityContext": _norm(pod.get("securityContext")),
        "spec.template.spec.restartPolicy": pod.get("restartPolicy"),
        "spec.template.spec.volumes": _sorted(volumes) or None,
        "container.name": main.get("name"),
        "container.image": main.get("image"),
        "container.imagePullPolicy": main.get("imagePullPolicy"),
        "container.command": cmd,
        "container.env": env or None,
        "container.envFrom": _sorted(main.get("envFrom")) or None,
        "container.volumeMounts": _sorted(mounts) or None,
        "container.resources": _norm(main.get("resources")),
        "container.workingDir": main.get("workingDir"),
        "container.securityContext": _norm(main.get("securityContext")),
    }
    return out


def markdown():
    rows = ["| field | why magekube differs from Mage's executor |", "|---|---|"]
    rows += ["| added: %s | %s |" % (name, why) for name, why in ADDED]
    rows += ["| `%s` | %s |" % (field, why) for field, why in sorted(INTENDED.items())]
    rows += ["| `%s` (Mage before %s) | %s |" % (field, fixed, why) for field, (fixed, why) in sorted(OLDER.items())]
    return "\n".join(rows)


if __name__ == "__main__":
    if sys.argv[1:] == ["--markdown"]:
        print(markdown())
    else:
        sys.exit("usage: parity.py --markdown")
