"""The trigger beside other start-up hooks, inside the pinned mage-ai:
Python imports only the first sitecustomize on its path, and
OpenTelemetry's auto-instrumentation installs one the same way. With the
trigger's directory first, its sitecustomize installs the trigger and then
runs OpenTelemetry's; a trigger that cannot load makes Mage's k8s runs
fail saying so, instead of reaching Mage's own executor, which holds no
Kubernetes token in a token-split pod.

Each case is a fresh interpreter of MAGEKUBE_OTEL_PYTHON: the mage-ai
virtualenv with OpenTelemetry's distro beside it (hack/test-python.sh).
"""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from magesetup import HERE, WORK  # noqa: F401,I001 (first: Mage reads its environment on import)

TRIGGER = os.path.dirname(HERE)
PYTHON = os.environ.get("MAGEKUBE_OTEL_PYTHON", "")
PROBE = """
import json
from mage_ai.data_preparation.executors import k8s_block_executor as m
from opentelemetry import trace
out = {"magekube": bool(getattr(m.K8sBlockExecutor, "_magekube", False)),
       "otel": type(trace.get_tracer_provider()).__module__}
try:
    m.K8sBlockExecutor.execute(None)
except Exception as e:
    out["error"] = str(e)
print(json.dumps(out))
"""


@unittest.skipUnless(PYTHON, "MAGEKUBE_OTEL_PYTHON is not set (hack/test-python.sh sets it)")
class StartupHooks(unittest.TestCase):
    def probe(self, *path):
        # A fresh interpreter, not in the project the other tests made
        # (Mage reads MAGE_REPO_PATH's metadata.yaml on import).
        env = {k: v for k, v in os.environ.items() if k != "MAGE_REPO_PATH"}
        env.update(PYTHONPATH=os.pathsep.join(path), OTEL_TRACES_EXPORTER="none",
                   OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
        out = subprocess.run([PYTHON, "-c", PROBE], env=env, cwd=WORK, capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr

    def otel_dir(self):
        out = subprocess.run([PYTHON, "-c", "import opentelemetry.instrumentation.auto_instrumentation as a, os; print(os.path.dirname(a.__file__))"],
                             capture_output=True, text=True, check=True)
        return out.stdout.strip()

    def test_both_hooks_run(self):
        got, _ = self.probe(TRIGGER, self.otel_dir())
        self.assertTrue(got["magekube"], "the trigger is not installed")
        self.assertEqual(got["otel"], "opentelemetry.sdk.trace", "OpenTelemetry's sitecustomize did not run")

    def test_trigger_alone(self):
        got, _ = self.probe(TRIGGER)
        self.assertTrue(got["magekube"])
        self.assertNotEqual(got["otel"], "opentelemetry.sdk.trace")

    def test_a_trigger_that_cannot_load_says_so(self):
        broken = tempfile.mkdtemp(dir=WORK)
        for name in ("sitecustomize.py", "usercustomize.py", "magekube_start.py"):
            shutil.copy(os.path.join(TRIGGER, name), broken)
        with open(os.path.join(broken, "magekube_mage.py"), "w") as f:
            f.write("raise ImportError('a broken trigger')\n")
        got, stderr = self.probe(broken, self.otel_dir())
        self.assertFalse(got["magekube"])
        self.assertIn("magekube: Mage trigger not installed: a broken trigger", stderr)
        self.assertIn("the Mage trigger could not load (a broken trigger)", got.get("error", ""))
        self.assertIn("holds no Kubernetes token", got["error"])
        self.assertEqual(got["otel"], "opentelemetry.sdk.trace", "OpenTelemetry's sitecustomize did not run after a failed trigger")


class UserCustomize(unittest.TestCase):
    """A Python without a virtualenv (Mage's image) imports usercustomize
    after sitecustomize: when another tool's sitecustomize comes first and
    does not run the trigger's, usercustomize installs the trigger."""

    def test_installed_behind_another_sitecustomize(self):
        python = shutil.which("python3")
        base = subprocess.run([python, "-c", "import site, sys; print(site.ENABLE_USER_SITE and sys.prefix == sys.base_prefix)"],
                              capture_output=True, text=True, check=True).stdout.strip()
        if base != "True":
            self.skipTest("%s has no user site (a virtualenv, or another user)" % python)
        other = tempfile.mkdtemp(dir=WORK)
        with open(os.path.join(other, "sitecustomize.py"), "w") as f:
            f.write("import os\nos.environ['OTHER_HOOK'] = 'ran'\n")
        probe = ("import os, sys, magekube_mage\n"
                 "print(os.environ.get('OTHER_HOOK'), any(isinstance(f, magekube_mage._Finder) for f in sys.meta_path))")
        out = subprocess.run([python, "-c", probe], env=dict(os.environ, PYTHONPATH=os.pathsep.join([other, TRIGGER])),
                             capture_output=True, text=True, check=True)
        self.assertEqual(out.stdout.split(), ["ran", "True"], out.stderr)


if __name__ == "__main__":
    unittest.main()
