"""Early scheduling inside the pinned mage-ai: Mage's own scheduler loop
and job queue run (early_schedule_run.py, one process group a scenario),
the trigger wakes the loop when a k8s block run ends, and Mage's own
block-run rows and the agent's requests show that every block run ran
once, that a failed or cancelled pipeline run starts nothing more, and
that the next level starts without waiting for the loop's interval.
"""
import json
import os
import signal
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
BLOCKS = 6  # early_schedule_run.BLOCKS


def scenario(**kw):
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "early_schedule_run.py"), json.dumps(kw)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env=dict(os.environ, PYTHONPATH=os.pathsep.join([HERE, os.path.dirname(HERE)])))
    try:
        out, err = proc.communicate(timeout=kw.get("within", 120) + 60)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # Mage's scheduler, its pool and workers
        except ProcessLookupError:
            pass
        proc.wait()
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if not lines:
        raise AssertionError("the scenario printed no result (exit %s):\n%s" % (proc.returncode, err[-4000:]))
    return json.loads(lines[-1])


def executions(result):
    """Requests per block run: how often Mage executed it."""
    n = {}
    for r in result["requests"]:
        n[r["block_run_id"]] = n.get(r["block_run_id"], 0) + 1
    return n


class EarlyScheduling(unittest.TestCase):
    def test_racing_loop_runs_every_block_run_once(self):
        # The loop ticks every second beside the early ticks: 4 pipeline
        # runs of a chain and a fan-out, 24 block runs.
        result = scenario(interval=1, runs=4, within=120)
        self.assertEqual(set(result["pipeline_runs"].values()), {"completed"}, result["pipeline_runs"])
        self.assertEqual(len(result["block_runs"]), 4 * BLOCKS)
        self.assertTrue(all(b["status"] == "completed" for b in result["block_runs"]), result["block_runs"])
        n = executions(result)
        self.assertEqual(sorted(n), sorted(b["id"] for b in result["block_runs"]))
        self.assertEqual(set(n.values()), {1}, "a block run executed more than once: %s" % n)
        self.assertTrue(all(not r["id"].endswith("-a2") for r in result["requests"]))
        print("racing loop: %d block runs, gaps p50 %.2fs max %.2fs" % (
            len(n), result["gaps_s"][len(result["gaps_s"]) // 2], result["gaps_s"][-1]), file=sys.stderr)

    def test_next_level_starts_without_the_interval(self):
        # A 60 s interval: the first tick starts the run, and without early
        # ticks the next level would wait a minute, four times.
        result = scenario(interval=60, runs=1, within=55, settle=1)
        self.assertEqual(set(result["pipeline_runs"].values()), {"completed"}, result)
        self.assertEqual(set(executions(result).values()), {1})
        self.assertLess(result["wall_s"], 58)
        print("early: wall %.1fs, gaps %s" % (result["wall_s"], ["%.2f" % g for g in result["gaps_s"]]), file=sys.stderr)

    def test_switch_off_leaves_it_to_the_interval(self):
        result = scenario(interval=60, runs=1, within=8, settle=0, early=False)
        self.assertEqual(set(result["pipeline_runs"].values()), {"running"}, result)
        started = {r["block_uuid"] for r in result["requests"]}
        self.assertEqual(started, {"load"}, "with MAGEKUBE_EARLY_SCHEDULE=0 only the first tick's block runs")

    def test_failed_block_schedules_nothing_downstream(self):
        result = scenario(interval=1, runs=2, fail="b", within=60)
        self.assertEqual(set(result["pipeline_runs"].values()), {"failed"}, result["pipeline_runs"])
        started = [r["block_uuid"] for r in result["requests"]]
        self.assertNotIn("join", started)
        self.assertNotIn("report", started)
        self.assertEqual(set(executions(result).values()), {1})

    def test_cancelled_run_schedules_nothing_more(self):
        result = scenario(interval=1, runs=1, cancel="a", within=60)
        self.assertEqual(set(result["pipeline_runs"].values()), {"cancelled"}, result["pipeline_runs"])
        started = [r["block_uuid"] for r in result["requests"]]
        self.assertNotIn("join", started)
        self.assertNotIn("report", started)
        self.assertEqual(set(executions(result).values()), {1})


if __name__ == "__main__":
    unittest.main()
