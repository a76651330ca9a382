"""Tests of the Mage-side trigger against a stand-in of Mage's executor
classes (tests/standin, same signatures) and a stand-in agent that
answers request files the way the real one does (claim, then status.json).

Run: python3 -m unittest discover -s integrations/mage/tests
"""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), os.path.join(HERE, "standin")]

import magekube_mage  # noqa: E402


class Pipeline:
    uuid = "etl"
    repo_path = "/home/src/default_repo"


class FakeAgent(threading.Thread):
    """Claims each request (moves it into runs/<id>/) and writes the
    terminal status outcome(request) returns; None leaves the run Running."""

    def __init__(self, root, outcome):
        super().__init__(daemon=True)
        self.root, self.outcome, self.seen, self.stop = root, outcome, [], threading.Event()

    def run(self):
        requests = os.path.join(self.root, "requests")
        while not self.stop.is_set():
            for name in os.listdir(requests) if os.path.isdir(requests) else []:
                if name.startswith(".") or not name.endswith(".json"):
                    continue
                with open(os.path.join(requests, name)) as f:
                    req = json.load(f)
                run_dir = os.path.join(self.root, "runs", req["id"])
                os.makedirs(run_dir)
                os.replace(os.path.join(requests, name), os.path.join(run_dir, "request.json"))
                self.seen.append(req)
                status = {"id": req["id"], "phase": "Running", "job": "mage-etl-block-1"}
                out = self.outcome(req)
                if out:
                    status.update(out)
                with open(os.path.join(run_dir, "status.json"), "w") as f:
                    json.dump(status, f)
            time.sleep(0.02)


class TriggerTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp()
        os.environ["MAGEKUBE_DIR"] = self.root
        for m in [m for m in sys.modules if m.startswith("mage_ai")]:
            del sys.modules[m]
        magekube_mage.install()
        from mage_ai.data_preparation.executors.executor_factory import ExecutorFactory

        self.factory = ExecutorFactory

    def agent(self, outcome):
        a = FakeAgent(self.root, outcome)
        a.start()
        self.addCleanup(a.stop.set)
        return a

    def test_block_run_succeeds(self):
        a = self.agent(lambda req: {"phase": "Succeeded", "reason": "Completed"})
        ex = self.factory.get_block_executor(Pipeline(), "load", block_run_id=42, execution_partition="p1")
        self.assertEqual(type(ex).__mro__[1].__name__, "K8sBlockExecutor")  # Mage's class is the base
        ex.execute(block_run_id=42, pipeline_run_id=7, global_vars={"env": "prod", "obj": object()})
        req = a.seen[0]
        self.assertEqual(req["kind"], "block")
        self.assertEqual((req["pipeline_uuid"], req["block_uuid"], req["block_run_id"], req["pipeline_run_id"]), ("etl", "load", 42, 7))
        self.assertEqual(req["project_dir"], "/home/src/default_repo")
        self.assertEqual(req["execution_partition"], "p1")
        self.assertEqual(req["variables"], {"env": "prod"})  # what JSON cannot carry is left out
        self.assertRegex(req["id"], r"^[A-Za-z0-9][A-Za-z0-9._-]{0,61}[A-Za-z0-9]$")

    def test_block_run_fails_like_mage(self):
        self.agent(lambda req: {"phase": "Failed", "reason": "OOMKilled", "message": "the container used more than 64Mi"})
        ex = self.factory.get_block_executor(Pipeline(), "load", block_run_id=43)
        failures = []
        with self.assertRaises(Exception) as caught:
            ex.execute(block_run_id=43, on_failure=lambda uuid, error: failures.append((uuid, error)))
        self.assertIn("Failed to execute k8s job mage-etl-block-1", str(caught.exception))
        self.assertIn("OOMKilled", str(caught.exception))
        self.assertEqual(failures[0][0], "load")

    def test_pipeline_run(self):
        a = self.agent(lambda req: {"phase": "Succeeded"})
        ex = self.factory.get_pipeline_executor(Pipeline())
        ex.execute(allow_blocks_to_fail=True, pipeline_run_id=9, global_vars={})
        self.assertEqual((a.seen[0]["kind"], a.seen[0]["pipeline_run_id"]), ("pipeline", 9))

    def test_interrupted_before_claim_deletes_the_request(self):
        ex = self.factory.get_block_executor(Pipeline(), "load", block_run_id=44)
        rid = magekube_mage.run_id("block", 44, "etl", "load")
        timer = threading.Timer(0.3, lambda: self.assertTrue(os.path.exists(os.path.join(self.root, "requests", rid + ".json"))))
        timer.start()
        with self.assertRaises(TimeoutError):
            magekube_mage.run(dict(id=rid, apiVersion="magekube/v1", kind="block", project_dir="/p", pipeline_uuid="etl"), timeout=0.5)
        timer.join()
        self.assertFalse(os.path.exists(os.path.join(self.root, "requests", rid + ".json")))
        del ex

    def test_pipeline_cancel_after_claim_writes_cancel(self):
        self.agent(lambda req: None)  # claims, stays Running
        ex = self.factory.get_pipeline_executor(Pipeline())
        rid = magekube_mage.run_id("pipeline", 10, "etl")
        t = threading.Thread(target=lambda: self.assertRaises(TimeoutError, magekube_mage.run,
                             ex._request(10, None), None, None, 1.0))
        t.start()
        deadline = time.time() + 5
        while magekube_mage.read_status(rid) is None and time.time() < deadline:
            time.sleep(0.02)
        ex.cancel(pipeline_run_id=10)
        self.assertTrue(os.path.exists(os.path.join(self.root, "runs", rid, "cancel")))
        t.join()

    def test_sitecustomize_installs_at_start(self):
        code = (
            "from mage_ai.data_preparation.executors.executor_factory import ExecutorFactory as F;"
            "import sys; e = F.get_block_executor(object(), 'b', block_run_id=1);"
            "print(type(e).__mro__[1].__module__, hasattr(type(e), '_magekube'))"
        )
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(HERE), os.path.join(HERE, "standin")]))
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        self.assertEqual(out.stdout.strip(), "mage_ai.data_preparation.executors.k8s_block_executor True")
        env["MAGEKUBE_DISABLE"] = "1"
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        self.assertIn("False", out.stdout)


if __name__ == "__main__":
    unittest.main()
