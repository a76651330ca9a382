# Python imports sitecustomize at start-up when it is on sys.path: with
# this directory on PYTHONPATH, Mage's `executor_type: k8s` runs go
# through the magekube agent (see magekube_mage.py). MAGEKUBE_DISABLE=1
# turns it off.
#
# Python imports only the first sitecustomize on the path, and other tools
# install theirs the same way (OpenTelemetry's opentelemetry-instrument,
# ddtrace-run). So this one runs the next sitecustomize on the path after
# its own work, and usercustomize.py beside it installs the trigger when
# another tool's sitecustomize came first and does not chain to this one.
import os
import sys


def _next_sitecustomize():
    """Runs the sitecustomize that comes after this directory on sys.path."""
    import importlib.machinery
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    rest, seen = [], False
    for p in sys.path:
        if seen:
            rest.append(p)
        elif os.path.abspath(p or os.curdir) == here:
            seen = True
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None or os.path.abspath(spec.origin or "") == os.path.abspath(__file__):
        return
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)


try:
    import magekube_start

    magekube_start.start()
except Exception:  # never stop the interpreter from starting
    pass
try:
    _next_sitecustomize()
except Exception as e:
    print("magekube: the next sitecustomize on PYTHONPATH failed: %s" % e, file=sys.stderr)
