"""Parity with Mage's own Job construction. For each config of a table,
Mage's K8sBlockExecutor (the pinned mage-ai: its config loading, level
merge, JobManager.create_job_object, only the Kubernetes API calls
replaced) and `agent render` build a Job for the same project, block run
and server pod, and the two are compared field by field. Every field
that differs must be in INTENDED (parity.py), each with its reason;
docs/config.md's table of differences is generated from that list
(`python3 integrations/mage/tests/parity.py --markdown`), and a test
keeps the two the same.

Needs the agent binary: MAGEKUBE_AGENT (hack/test-python.sh builds it).
"""
import copy
import json
import importlib.metadata
import os
import subprocess
import tempfile
import types
import unittest

import magesetup  # noqa: F401,I001 (first: Mage reads its environment on import)
import parity
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException
from mage_ai.data_preparation.models.block import Block
from mage_ai.data_preparation.models.pipeline import Pipeline
from mage_ai.data_preparation.repo_manager import init_repo, set_repo_path
from mage_ai.services.k8s import job_manager as mage_job_manager
from mage_ai.services.k8s.config import K8sExecutorConfig

import magekube_mage  # noqa: E402

# Mage's own executor class, whatever sitecustomize patched in its place.
from mage_ai.data_preparation.executors import k8s_block_executor as mage_block_module  # noqa: E402

MAGE_EXECUTOR = mage_block_module.K8sBlockExecutor
while getattr(MAGE_EXECUTOR, "_magekube", False):
    MAGE_EXECUTOR = MAGE_EXECUTOR.__bases__[0]

with open(magesetup.SERVER_POD) as f:
    SERVER_POD = yaml.safe_load(f)

# The configs compared: every field of the seed document (both formats),
# the three levels, templates, container_config.
# The job template K8S_CONFIG_FILE names (Mage reads it under every level).
JOB_TEMPLATE = {
    "metadata": {"labels": {"template": "yes"}},
    "pod": {"tolerations": [{"key": "batch", "operator": "Exists"}], "node_selector": {"pool": "jobs"}},
    "job": {"backoff_limit": 3, "active_deadline_seconds": 900},
}

CASES = {
    "defaults": ({}, None),
    "K8S_CONFIG_FILE": ({"job": {"backoff_limit": 1, "active_deadline_seconds": 900}}, None),
    "simple format": ({
        "job_name_prefix": "etl",
        "namespace": "mage",
        "service_account_name": "mage-jobs",
        "resource_requests": {"cpu": "500m", "memory": "512Mi"},
        "resource_limits": {"cpu": "2", "memory": "2Gi"},
    }, None),
    "detailed format": ({
        "metadata": {"namespace": "mage", "labels": {"team": "data"}, "annotations": {"a": "b"}},
        "container": {
            "name": "worker", "image": "mageai/mageai:0.9.80", "image_pull_policy": "Always",
            "env": [{"name": "STAGE", "value": "prod"}],
            "volume_mounts": [{"name": "scratch", "mount_path": "/scratch"}],
        },
        "pod": {
            "service_account_name": "mage-jobs",
            "node_selector": {"pool": "batch"},
            "tolerations": [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}],
            "scheduler_name": "batch-scheduler",
            "image_pull_secrets": "regcred",
            "volumes": [{"name": "scratch", "empty_dir": {}}],
        },
        "job": {"active_deadline_seconds": 600, "backoff_limit": 2, "ttl_seconds_after_finished": 120},
    }, None),
    "job section without backoff_limit": ({"job": {"active_deadline_seconds": 60}}, None),
    "block level": ({"resource_limits": {"cpu": "1", "memory": "1Gi"}, "namespace": "mage"},
                    {"resource_limits": {"memory": "4Gi"}}),
    "resources in both formats": ({
        "container": {"resources": {"limits": {"nvidia.com/gpu": "1", "memory": "1Gi"}}},
        "resource_limits": {"memory": "2Gi"},
    }, None),
    "templates": ({"namespace": "{{ env_var('K8S_NAMESPACE') }}", "job_name_prefix": "{{ env_var('ENVIRONMENT') }}"}, None),
    "container_config": ({"container_config": {"image": "mageai/mageai:0.9.80", "image_pull_policy": "Always",
                                               "env": [{"name": "X", "value": "1"}]}}, None),
    "container_config command, args and resources": ({
        "resource_limits": {"memory": "1Gi"},
        "container_config": {"command": ["python", "-m", "job"], "args": ["--fast"],
                             "resources": {"limits": {"memory": "3Gi"}, "requests": {"cpu": "1"}}},
    }, None),
}


def with_job_template(root):
    """Writes JOB_TEMPLATE next to the project and names it the way Mage's
    container does, K8S_CONFIG_FILE: in Mage's process (its config class
    reads it once, at import) and in the server pod the agent reads."""
    template = os.path.join(root, "k8s_job.yaml")
    with open(template, "w") as f:
        yaml.safe_dump(JOB_TEMPLATE, f)
    K8sExecutorConfig.config_file = template
    pod = copy.deepcopy(SERVER_POD)
    pod["spec"]["containers"][0]["env"].append({"name": "K8S_CONFIG_FILE", "value": template})
    return pod


def k8s_dict(obj):
    return client.ApiClient().sanitize_for_serialization(obj)


class Cluster:
    """The Kubernetes API as Mage's JobManager calls it: the server pod to
    read, the Job to create (kept), the Job to watch (already succeeded)."""

    def __init__(self, pod):
        self.pod, self.created = pod, None

    def __enter__(self):
        api = client.ApiClient()
        pod = api._ApiClient__deserialize(self.pod, "V1Pod")
        saved = {}

        def patch(cls, name, fn):
            saved[(cls, name)] = getattr(cls, name)
            setattr(cls, name, fn)

        def read_job(api_self, name, namespace, **kw):
            if self.created is None:
                raise ApiException(status=404)
            return client.V1Job(status=client.V1JobStatus(succeeded=1))

        def create_job(api_self, namespace, body, **kw):
            self.created = (namespace, body)
            return body

        patch(client.CoreV1Api, "read_namespaced_pod", lambda s, name, namespace, **kw: pod)
        patch(client.BatchV1Api, "read_namespaced_job", read_job)
        patch(client.BatchV1Api, "create_namespaced_job", create_job)
        patch(client.BatchV1Api, "delete_namespaced_job", lambda s, *a, **kw: None)
        # Its 5 s poll of the Job, which here has succeeded already.
        patch(mage_job_manager, "time", types.SimpleNamespace(sleep=lambda s: None))
        self.saved = saved
        return self

    def __exit__(self, *exc):
        for (cls, name), fn in self.saved.items():
            setattr(cls, name, fn)


def make_project(root, project_config, block_config):
    """A Mage project made by Mage, with the config at the project level and
    (optionally) the block level."""
    repo = os.path.join(root, "repo")
    init_repo(repo)
    path = os.path.join(repo, "metadata.yaml")
    with open(path) as f:
        text = f.read().replace("help_improve_mage: true", "help_improve_mage: false")
    # Appended as a user writes it: Mage renders this file with Jinja
    # before parsing it, so templates stay in double-quoted strings.
    text += "\n" + yaml.safe_dump({"k8s_executor_config": project_config}, default_style='"')
    with open(path, "w") as f:
        f.write(text)
    set_repo_path(repo)
    pipeline = Pipeline.create("etl", repo_path=repo)
    block = Block.create("load", "data_loader", repo, pipeline=pipeline, language="python")
    block.update(dict(executor_type="k8s", executor_config=block_config))
    return repo, Pipeline.get("etl", repo_path=repo)


def mage_job(pipeline, pod):
    executor = MAGE_EXECUTOR(pipeline, "load", execution_partition="7/20261126T000000")
    executor.executor_config = K8sExecutorConfig.load(config=executor.executor_config_dict)
    with Cluster(pod) as cluster:
        executor._execute(block_run_id=42, global_vars={}, pipeline_run_id=7)
    namespace, job = cluster.created
    command = executor._run_commands(block_run_id=42, global_vars={}, pipeline_run_id=7)
    return namespace, k8s_dict(job), command


def agent_job(root, repo, pipeline, command, pod_file):
    req = {
        "apiVersion": "magekube/v1", "id": "parity", "kind": "block", "project_dir": repo,
        "pipeline_uuid": "etl", "block_uuid": "load", "block_run_id": 42, "pipeline_run_id": 7,
        "execution_partition": "7/20261126T000000", "command": command,
        "env": magekube_mage._template_env(pipeline),  # as the trigger sends it
    }
    path = os.path.join(root, "request.json")
    with open(path, "w") as f:
        json.dump(req, f)
    out = subprocess.run(
        [os.environ["MAGEKUBE_AGENT"], "render", "--pod-file", pod_file,
         "--allow-service-account", "*", "--allow-namespace", "*",
         "--allow-toleration", "*", "--allow-pull-secret", "*", path],
        capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise AssertionError("agent render failed:\n" + out.stderr)
    return yaml.safe_load(out.stdout)


@unittest.skipUnless(os.environ.get("MAGEKUBE_AGENT"), "MAGEKUBE_AGENT (the agent binary) is not set")
class Parity(unittest.TestCase):
    def test_cases(self):
        seen = set()
        version = importlib.metadata.version("mage-ai")
        intended = parity.intended(version)
        for name, (project_config, block_config) in CASES.items():
            with self.subTest(name), tempfile.TemporaryDirectory() as root:
                repo, pipeline = make_project(root, project_config, block_config)
                pod = with_job_template(root) if name == "K8S_CONFIG_FILE" else SERVER_POD
                pod_file = os.path.join(root, "pod.yaml")
                with open(pod_file, "w") as f:
                    yaml.safe_dump(pod, f)
                try:
                    namespace, mage, command = mage_job(pipeline, pod)
                finally:
                    K8sExecutorConfig.config_file = ""
                agent = agent_job(root, repo, pipeline, command, pod_file)
                mage_fields = parity.fields(mage, namespace, command)
                agent_fields = parity.fields(agent, agent["metadata"]["namespace"], command)
                unlisted = []
                for field in sorted(set(mage_fields) | set(agent_fields)):
                    m, a = mage_fields.get(field), agent_fields.get(field)
                    if m == a:
                        continue
                    seen.add(field)
                    if field not in intended:
                        unlisted.append("%s: Mage %r, agent %r" % (field, m, a))
                self.assertFalse(unlisted, "differences of mage-ai %s not listed in parity.INTENDED or OLDER:\n%s" % (version, "\n".join(unlisted)))
        unused = set(intended) - seen
        self.assertFalse(unused, "listed differences no case shows: %s" % sorted(unused))

    def test_chart_k8s_executor_config_is_read_by_neither(self):
        """The official chart's k8sExecutorConfig is a file at
        /etc/mage/k8s-executor-config.yaml named by K8S_DEFAULT_CONFIG_PATH
        in the Mage container. Mage's own executor does not read it (in
        every release of the supported range), and neither does the agent:
        a run's Job is the same with and without it. When a Mage release
        starts reading it, this fails, and the agent must follow."""
        with tempfile.TemporaryDirectory() as root:
            repo, pipeline = make_project(root, {}, None)
            chart_config = os.path.join(root, "k8s-executor-config.yaml")
            with open(chart_config, "w") as f:
                yaml.safe_dump({"enabled": True, "enforce": True,
                                "resource_limits": {"cpu": "2000m", "memory": "8Gi"},
                                "resource_requests": {"cpu": "1000m", "memory": "4Gi"}}, f)
            pod = copy.deepcopy(SERVER_POD)
            pod["spec"]["containers"][0]["env"].append({"name": "K8S_DEFAULT_CONFIG_PATH", "value": chart_config})
            pod_file = os.path.join(root, "pod.yaml")
            with open(pod_file, "w") as f:
                yaml.safe_dump(pod, f)
            os.environ["K8S_DEFAULT_CONFIG_PATH"] = chart_config
            try:
                namespace, mage, command = mage_job(pipeline, pod)
            finally:
                del os.environ["K8S_DEFAULT_CONFIG_PATH"]
            agent = agent_job(root, repo, pipeline, command, pod_file)
            for who, job in (("Mage", mage), ("the agent", agent)):
                text = json.dumps(job)
                self.assertNotIn("8Gi", text, "%s's Job took the chart's k8sExecutorConfig" % who)

    def test_docs_table_is_generated(self):
        docs = os.path.join(magesetup.HERE, "..", "..", "..", "docs", "config.md")
        with open(docs) as f:
            text = f.read()
        self.assertTrue(parity.markdown() in text, "docs/config.md is stale: python3 integrations/mage/tests/parity.py --markdown")


if __name__ == "__main__":
    unittest.main()
