"""Route Mage's Kubernetes executor through the magekube agent.

Mage's executors have no plugin point, so this module replaces the two
classes Mage's ExecutorFactory imports for ``executor_type: k8s``:

* ``K8sBlockExecutor._execute(block_run_id=None, global_vars=None, **kwargs)``
* ``K8sPipelineExecutor.execute(pipeline_run_id=None, global_vars=None, **kwargs)``
  and ``K8sPipelineExecutor.cancel(pipeline_run_id=None)``

with subclasses of Mage's own that write a run request file for the
magekube agent sidecar and wait on the run's ``status.json``. Mage's own
executor would create the Job itself and poll it every 5 seconds; here the
agent builds the same Job (same name, same ``k8s_executor_config``) and
this side only reads a file. A failed run raises the exception Mage's
executor raises (``Exception('Failed to execute k8s job <name>')``, with
the agent's reason); a run interrupted on the Mage side is cancelled: its
request is deleted, or its Job deleted through ``runs/<id>/cancel``.

Standard library only. ``sitecustomize.py`` next to this file installs it
when the directory is on PYTHONPATH (deploy/manifests/mage-trigger).
"""

import hashlib
import json
import os
import re
import time

API_VERSION = "magekube/v1"
TERMINAL = ("Succeeded", "Failed", "Cancelled")
BLOCK_MODULE = "mage_ai.data_preparation.executors.k8s_block_executor"
PIPELINE_MODULE = "mage_ai.data_preparation.executors.k8s_pipeline_executor"


def root_dir():
    """The agent's directory as the Mage container sees it."""
    return os.environ.get("MAGEKUBE_DIR", "/home/src/.magekube")


def run_id(kind, run_number, pipeline_uuid, block_uuid=None):
    """A run id the agent accepts: [A-Za-z0-9._-], at most 63 characters.

    It is the same for the same Mage run, so a Mage retry of the same
    block run finds its run instead of starting a second Job."""
    base = "%s-%s" % (kind, run_number if run_number is not None else "x")
    tail = re.sub(r"[^A-Za-z0-9.-]+", "-", "%s-%s" % (pipeline_uuid, block_uuid or ""))
    tail = re.sub(r"\.\.+", ".", tail)
    digest = hashlib.sha256(("%s/%s" % (pipeline_uuid, block_uuid)).encode()).hexdigest()[:8]
    tail = tail[: 63 - len(base) - len(digest) - 2].strip("-.")
    return "-".join(p for p in (base, tail, digest) if p)


def submit(request, root=None):
    """Write requests/<id>.json atomically (temporary dot file, then rename)."""
    root = root or root_dir()
    requests = os.path.join(root, "requests")
    os.makedirs(requests, exist_ok=True)
    tmp = os.path.join(requests, ".%s.json.tmp" % request["id"])
    with open(tmp, "w") as f:
        json.dump(request, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, os.path.join(requests, request["id"] + ".json"))
    return request["id"]


def read_status(rid, root=None):
    path = os.path.join(root or root_dir(), "runs", rid, "status.json")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None  # not written yet, or being replaced


def cancel(rid, root=None):
    """Cancel a run: delete its request if the agent has not claimed it,
    else ask the agent to delete its Job."""
    root = root or root_dir()
    try:
        os.remove(os.path.join(root, "requests", rid + ".json"))
        return
    except FileNotFoundError:
        pass
    run_dir = os.path.join(root, "runs", rid)
    if os.path.isdir(run_dir):
        with open(os.path.join(run_dir, "cancel"), "w") as f:
            f.write("cancelled by Mage\n")


def wait(rid, root=None, interval=0.2, timeout=None, logger=None):
    """Wait until the run's status is terminal and return it. The status is
    a local file the agent rewrites on every transition; reading it costs
    no API call."""
    deadline = None if timeout is None else time.monotonic() + timeout
    last = None
    while True:
        status = read_status(rid, root)
        if status:
            phase = (status.get("phase"), status.get("reason"))
            if logger is not None and phase != last:
                logger.info("magekube run %s: %s %s %s", rid, phase[0], phase[1] or "", status.get("message") or "")
            last = phase
            if status.get("phase") in TERMINAL:
                return status
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError("magekube run %s: no terminal status after %ss" % (rid, timeout))
        time.sleep(interval)


def run(request, root=None, logger=None, timeout=None):
    """Submit, wait, and raise Mage's failure unless the run succeeded. An
    interruption (Mage cancelling the run) cancels it before propagating."""
    root = root or root_dir()
    rid = request["id"]
    status = read_status(rid, root)
    if not status or status.get("phase") in TERMINAL:
        if status:  # an earlier attempt of this Mage run ended: run again
            rid = request["id"] = "%s-r%d" % (rid[:58], int(time.time()) % 10000)
        submit(request, root)
    try:
        status = wait(rid, root, logger=logger, timeout=timeout)
    except BaseException:
        cancel(rid, root)
        raise
    if status.get("phase") != "Succeeded":
        raise Exception(
            "Failed to execute k8s job %s: %s: %s (magekube run %s)"
            % (status.get("job") or rid, status.get("reason"), status.get("message"), rid)
        )
    return status


def _variables(global_vars):
    """The JSON-serialisable part of Mage's global variables."""
    out = {}
    for k, v in (global_vars or {}).items():
        try:
            json.dumps(v)
        except (TypeError, ValueError):
            continue
        out[k] = v
    return out


def _common(pipeline, execution_partition, global_vars):
    req = {
        "apiVersion": API_VERSION,
        "project_dir": getattr(pipeline, "repo_path", None) or os.getcwd(),
        "pipeline_uuid": pipeline.uuid,
    }
    if execution_partition:
        req["execution_partition"] = execution_partition
    variables = _variables(global_vars)
    if variables:
        req["variables"] = variables
    if os.environ.get("TRACEPARENT"):
        req["traceparent"] = os.environ["TRACEPARENT"]
    return req


def block_executor_class(base):
    """A subclass of Mage's K8sBlockExecutor that runs through magekube."""

    class K8sBlockExecutor(base):
        def _execute(self, block_run_id=None, global_vars=None, **kwargs):
            req = _common(self.pipeline, self.execution_partition, global_vars)
            req.update(
                id=run_id("block", block_run_id, self.pipeline.uuid, self.block_uuid),
                kind="block",
                block_uuid=self.block_uuid,
            )
            if block_run_id is not None:
                req["block_run_id"] = int(block_run_id)
            if kwargs.get("pipeline_run_id"):
                req["pipeline_run_id"] = int(kwargs["pipeline_run_id"])
            run(req, logger=getattr(self, "logger", None))

    K8sBlockExecutor.__qualname__ = K8sBlockExecutor.__name__
    K8sBlockExecutor.__module__ = base.__module__
    return K8sBlockExecutor


def pipeline_executor_class(base):
    """A subclass of Mage's K8sPipelineExecutor that runs through magekube."""

    class K8sPipelineExecutor(base):
        def _request(self, pipeline_run_id, global_vars):
            req = _common(self.pipeline, self.execution_partition, global_vars)
            req.update(id=run_id("pipeline", pipeline_run_id, self.pipeline.uuid), kind="pipeline")
            if pipeline_run_id is not None:
                req["pipeline_run_id"] = int(pipeline_run_id)
            return req

        def execute(self, pipeline_run_id=None, global_vars=None, **kwargs):
            run(self._request(pipeline_run_id, global_vars), logger=getattr(self, "logger", None))

        def cancel(self, pipeline_run_id=None, **kwargs):
            cancel(self._request(pipeline_run_id, None)["id"])

    K8sPipelineExecutor.__qualname__ = K8sPipelineExecutor.__name__
    K8sPipelineExecutor.__module__ = base.__module__
    return K8sPipelineExecutor


def patch_module(module):
    """Replace the executor class of one of Mage's two k8s modules."""
    if module.__name__ == BLOCK_MODULE and not getattr(module.K8sBlockExecutor, "_magekube", False):
        module.K8sBlockExecutor = block_executor_class(module.K8sBlockExecutor)
        module.K8sBlockExecutor._magekube = True
    elif module.__name__ == PIPELINE_MODULE and not getattr(module.K8sPipelineExecutor, "_magekube", False):
        module.K8sPipelineExecutor = pipeline_executor_class(module.K8sPipelineExecutor)
        module.K8sPipelineExecutor._magekube = True


class _Finder:
    """A meta path finder that patches Mage's k8s executor modules right
    after they load (ExecutorFactory imports them lazily)."""

    def find_spec(self, name, path=None, target=None):
        if name not in (BLOCK_MODULE, PIPELINE_MODULE):
            return None
        import importlib.machinery

        for finder in __import__("sys").meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _PatchingLoader(spec.loader)
                return spec
        return None


class _PatchingLoader:
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        patch_module(module)


def install():
    """Patch Mage's k8s executors now if loaded, else when they load."""
    import sys

    if os.environ.get("MAGEKUBE_DISABLE") == "1":
        return
    for name in (BLOCK_MODULE, PIPELINE_MODULE):
        if name in sys.modules:
            patch_module(sys.modules[name])
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
