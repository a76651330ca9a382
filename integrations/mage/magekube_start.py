"""Installs the trigger at interpreter start (sitecustomize.py and
usercustomize.py call start()), and when it cannot load says so: Mage's
`executor_type: k8s` runs would otherwise go to Mage's own k8s executor. In a pod with the token split (the sidecar's
layout: the Mage container holds no Kubernetes token) that executor cannot
create a Job, and fails with an API error that names neither magekube nor
the cause. This replaces its execution with an error that says why;
where the Mage container does hold a token, Mage's own executor is left to
run. Standard library only, and nothing beyond what it must import."""
import os
import sys

TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
MODULES = (
    "mage_ai.data_preparation.executors.k8s_block_executor",
    "mage_ai.data_preparation.executors.k8s_pipeline_executor",
)


def start():
    """Install the trigger; if it cannot load, refuse Mage's own k8s
    executors with a message naming why. Never raises: the interpreter
    must start whatever happens here."""
    try:
        import magekube_mage

        magekube_mage.install()
    except Exception as e:
        print("magekube: Mage trigger not installed: %s" % e, file=sys.stderr)
        try:
            refuse(e)
        except Exception:
            pass


def refuse(cause, token=TOKEN):
    """Make Mage's k8s executors fail with a message naming cause, unless
    the Mage container holds a service-account token of its own."""
    if os.path.exists(token) or os.environ.get("MAGEKUBE_DISABLE") == "1":
        return
    message = (
        "magekube: the Mage trigger could not load (%s), and Mage's own k8s executor cannot create Jobs "
        "from this container: it holds no Kubernetes token (the magekube sidecar holds it). Fix the trigger "
        "(PYTHONPATH, the magekube-mage ConfigMap), or roll back to Mage's own executor as docs/operations.md says." % cause
    )
    for name in MODULES:
        if name in sys.modules:
            _refuse(sys.modules[name], message)
    sys.meta_path.insert(0, _Finder(message))


def _refuse(module, message):
    for cls_name in ("K8sBlockExecutor", "K8sPipelineExecutor"):
        cls = getattr(module, cls_name, None)
        if cls is None or getattr(cls, "_magekube_refused", False):
            continue

        def execute(self, *args, **kwargs):
            raise RuntimeError(message)

        for method in ("execute", "_execute"):
            if hasattr(cls, method):
                setattr(cls, method, execute)
        cls._magekube_refused = True


class _Finder:
    """Refuses the executors right after their modules load."""

    def __init__(self, message):
        self.message = message

    def find_spec(self, name, path=None, target=None):
        if name not in MODULES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                loader, message = spec.loader, self.message
                exec_module = loader.exec_module

                def exec_and_refuse(module, _exec=exec_module):
                    _exec(module)
                    _refuse(module, message)

                loader.exec_module = exec_and_refuse
                return spec
        return None
