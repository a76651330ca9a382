"""The Mage-side trigger inside the pinned mage-ai itself: a project made
by Mage's init_repo, Mage's own SQLite database and migrations, real
pipeline-schedule, pipeline-run and block-run rows, and Mage's scheduler
entry points (run_block, run_pipeline, stop_pipeline_run). No part of Mage
is imitated. The counterpart of the trigger is a small agent in this file
that claims request files and writes statuses the way the Go agent does
(its Kubernetes side is tested in test/integration and test/e2e).

Run with the interpreter of the mage-ai virtualenv (hack/test-python.sh).
"""
import asyncio
import importlib.metadata
import json
import os
import threading
import time
import unittest

from magesetup import REPO, ROOT, mage_project  # noqa: I001 (first: Mage reads its environment on import)

import magekube_mage  # noqa: E402

magekube_mage.install()  # what sitecustomize does at interpreter start

from mage_ai.data_preparation.models.block import Block  # noqa: E402
from mage_ai.data_preparation.models.pipeline import Pipeline  # noqa: E402
from mage_ai.orchestration.db.models.schedules import (  # noqa: E402
    BlockRun,
    PipelineRun,
    PipelineSchedule,
)
from mage_ai.orchestration import pipeline_scheduler_original as scheduler  # noqa: E402


def setUpModule():
    mage_project()


class Agent(threading.Thread):
    """Claims each request (moves it to runs/<id>/request.json), writes
    Queued and Running, then the status outcome(request) returns; "hold"
    keeps the run Running until runs/<id>/cancel appears, then Cancelled."""

    def __init__(self, outcome):
        super().__init__(daemon=True)
        self.outcome, self.seen, self.done = outcome, [], threading.Event()
        self.held = {}

    def run(self):
        requests = os.path.join(ROOT, "requests")
        while not self.done.is_set():
            names = os.listdir(requests) if os.path.isdir(requests) else []
            for name in sorted(n for n in names if n.endswith(".json") and not n.startswith(".")):
                self.claim(os.path.join(requests, name))
            for rid in list(self.held):
                if os.path.exists(os.path.join(ROOT, "runs", rid, "cancel")):
                    self.status(rid, "Cancelled", "Cancelled", "cancelled by Mage")
                    del self.held[rid]
            time.sleep(0.02)

    def claim(self, path):
        with open(path) as f:
            req = json.load(f)
        run_dir = os.path.join(ROOT, "runs", req["id"])
        os.makedirs(run_dir)
        os.rename(path, os.path.join(run_dir, "request.json"))
        self.seen.append(req)
        self.status(req["id"], "Queued")
        self.status(req["id"], "Running")
        phase = self.outcome(req)
        if phase == "hold":
            self.held[req["id"]] = req
        elif phase == "Succeeded":
            self.status(req["id"], "Succeeded")
        else:
            self.status(req["id"], "Failed", "OOMKilled", "the block's container exceeded its memory limit (512Mi)")

    def status(self, rid, phase, reason="", message=""):
        path = os.path.join(ROOT, "runs", rid, "status.json")
        with open(path + ".tmp", "w") as f:
            json.dump({"id": rid, "phase": phase, "reason": reason, "message": message, "job": "mage-job-" + rid}, f)
        os.replace(path + ".tmp", path)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.join()


def make_pipeline(uuid, blocks, one_process=False, executor="k8s"):
    """A pipeline of chained Python blocks, each with executor_type k8s, and
    a pipeline run of a trigger named "daily etl" with Mage's block runs."""
    pipeline = Pipeline.create(uuid, repo_path=REPO)
    upstream = []
    for name in blocks:
        block = Block.create(name, "transformer" if upstream else "data_loader", REPO, pipeline=pipeline,
                             upstream_block_uuids=upstream, language="python")
        block.update(dict(executor_type=executor))
        upstream = [name]
    if one_process:
        pipeline = Pipeline.get(uuid, repo_path=REPO)
        asyncio.run(pipeline.update(dict(executor_type="k8s", run_pipeline_in_one_process=True)))
    pipeline = Pipeline.get(uuid, repo_path=REPO)
    schedule = PipelineSchedule.create(name="daily etl", pipeline_uuid=uuid, schedule_type="time")
    run = PipelineRun.create(pipeline_schedule_id=schedule.id, pipeline_uuid=uuid, variables={},
                             create_block_runs=not one_process)
    # Mage's scheduler starts the run (status running, started_at); the
    # tests then call the entry points its queue would call.
    scheduler.PipelineScheduler(run).start(should_schedule=False)
    return pipeline, fresh(PipelineRun, run.id)


def block_run(run, uuid):
    return next(b for b in BlockRun.query.filter(BlockRun.pipeline_run_id == run.id) if b.block_uuid == uuid)


def fresh(model, id_):
    model.query.session.expire_all()
    return model.query.get(id_)


def run_block(run, br):
    """Mage's scheduler entry point for one block run; Mage raises the
    executor's exception after recording the failure."""
    try:
        scheduler.run_block(run.id, br.id, {}, {"pipeline_run_id": run.id, "block_run_id": br.id})
        return None
    except Exception as e:
        return e


class BlockRuns(unittest.TestCase):
    def test_success_sends_mage_command_and_trigger(self):
        _, run = make_pipeline("ok_pipe", ["load"])
        br = block_run(run, "load")
        with Agent(lambda r: "Succeeded") as agent:
            err = run_block(run, br)
        self.assertIsNone(err)
        self.assertEqual(fresh(BlockRun, br.id).status, BlockRun.BlockRunStatus.COMPLETED)
        (req,) = agent.seen
        self.assertEqual((req["kind"], req["block_uuid"], req["block_run_id"], req["pipeline_run_id"]),
                         ("block", "load", br.id, run.id))
        self.assertEqual(req["trigger_name"], "daily etl")
        self.assertEqual(req["command"][:5], ["/app/run_app.sh", "mage", "run", REPO, "ok_pipe"])
        self.assertIn("--block-run-id", req["command"])
        self.assertLessEqual(len(req["id"]), 63)

    def test_block_runs_of_one_pipeline_run_share_one_trace(self):
        _, run = make_pipeline("traced_pipe", ["first", "second"])
        _, other = make_pipeline("traced_pipe2", ["only"])
        with Agent(lambda r: "Succeeded") as agent:
            for r, name in ((run, "first"), (run, "second"), (other, "only")):
                self.assertIsNone(run_block(r, block_run(r, name)))
        first, second, only = (req["traceparent"].split("-") for req in agent.seen)
        self.assertEqual(first, second)  # one trace, one (virtual) parent
        self.assertNotEqual(first[1], only[1])
        self.assertEqual((len(first[1]), len(first[2]), first[3]), (32, 16, "01"))

    def test_template_env_travels_with_the_request(self):
        """env_var() must see what Mage sees: a value the Mage container got
        from a Secret (here: set in this process) is sent with the request,
        and only the names the config's templates use."""
        _, run = make_pipeline("env_pipe", ["load"])
        with open(os.path.join(REPO, "pipelines", "env_pipe", "metadata.yaml"), "a") as f:
            f.write("executor_config:\n  namespace: \"{{ env_var('MAGEKUBE_TEST_FROM_SECRET') }}\"\n")
        os.environ["MAGEKUBE_TEST_FROM_SECRET"] = "jobs-from-a-secret"
        try:
            with Agent(lambda r: "Succeeded") as agent:
                self.assertIsNone(run_block(run, block_run(run, "load")))
        finally:
            del os.environ["MAGEKUBE_TEST_FROM_SECRET"]
        (req,) = agent.seen
        self.assertEqual(req.get("env"), {"MAGEKUBE_TEST_FROM_SECRET": "jobs-from-a-secret"})

    def test_failure_records_agent_reason_in_mage(self):
        _, run = make_pipeline("fail_pipe", ["load"])
        br = block_run(run, "load")
        with Agent(lambda r: "Failed"):
            err = run_block(run, br)
        self.assertIsNotNone(err)
        self.assertIn("Failed to execute k8s job", str(err))
        self.assertIn("OOMKilled", str(err))
        got = fresh(BlockRun, br.id)
        self.assertEqual(got.status, BlockRun.BlockRunStatus.FAILED)
        self.assertIn("OOMKilled", json.dumps(got.metrics or {}) + str(getattr(got, "error_details", "") or ""))
        # The trigger's own waiting never cancels a run that ended.
        self.assertFalse(os.path.exists(os.path.join(ROOT, "runs", magekube_mage.run_id("block", br.id, "fail_pipe", "load"), "cancel")))

    def test_retry_of_same_block_run_is_a_new_attempt(self):
        _, run = make_pipeline("retry_pipe_with_a_rather_long_name_to_test_limits", ["load_the_data_block"])
        br = block_run(run, "load_the_data_block")
        outcomes = iter(["Failed", "Succeeded"])
        with Agent(lambda r: next(outcomes)) as agent:
            self.assertIsNotNone(run_block(run, br))
            # Mage's "retry" puts the same block run back to initial.
            fresh(BlockRun, br.id).update(status=BlockRun.BlockRunStatus.INITIAL)
            self.assertIsNone(run_block(run, br))
        first, second = agent.seen
        self.assertEqual(second["id"], first["id"] + "-a2")
        self.assertEqual(second.get("attempt"), 2)
        self.assertLessEqual(len(second["id"]), 63)
        self.assertEqual(fresh(BlockRun, br.id).status, BlockRun.BlockRunStatus.COMPLETED)

    def test_restarted_mage_takes_the_attempt_that_ended_meanwhile(self):
        """The waiting process dies with the Mage pod while the Job runs
        (its job-queue process killed, nothing cancelled); the Job ends;
        the new Mage resets the block run it found running and runs it
        again (its crashed-run recovery): the trigger takes the ended
        attempt, no second request, as Mage's own executor takes the Job
        it finds. Its retry after that is a new attempt."""
        from mage_ai.orchestration.job_manager import JobType, get_job_manager

        _, run = make_pipeline("restart_pipe", ["load"])
        br = block_run(run, "load")
        with Agent(lambda r: "hold") as agent:
            jobs = get_job_manager()
            jobs.start()
            self.addCleanup(jobs.stop)
            jobs.add_job(JobType.BLOCK_RUN, br.id, scheduler.run_block, run.id, br.id, {}, {})
            wait_for(lambda: agent.held, timeout=60)
            jobs.kill_block_run_job(br.id)
            wait_for(lambda: not jobs.has_block_run_job(br.id))
            rid = agent.seen[0]["id"]
            agent.held.pop(rid)
            agent.status(rid, "Succeeded")
            fresh(BlockRun, br.id).update(status=BlockRun.BlockRunStatus.INITIAL)
            self.assertIsNone(run_block(run, br))
            self.assertEqual([r["id"] for r in agent.seen], [rid], "the ended attempt was run again")
            self.assertEqual(fresh(BlockRun, br.id).status, BlockRun.BlockRunStatus.COMPLETED)
            self.assertTrue(magekube_mage.was_returned(rid))
            self.assertFalse(os.path.exists(os.path.join(ROOT, "runs", rid, "cancel")))

            agent.outcome = lambda r: "Succeeded"
            fresh(BlockRun, br.id).update(status=BlockRun.BlockRunStatus.INITIAL)  # Mage's retry
            self.assertIsNone(run_block(run, br))
            self.assertEqual([r["id"] for r in agent.seen], [rid, rid + "-a2"])

    def test_an_ended_block_run_is_not_crashed(self):
        """Mage's crashed-run check reads its block runs, then asks the job
        manager of each: one that completed or failed in between (its job
        gone) is not reset and run again; one running with no job is."""
        from mage_ai.orchestration.job_manager import get_job_manager

        _, run = make_pipeline("crash_check_pipe", ["load", "clean"])
        done, lost = block_run(run, "load"), block_run(run, "clean")
        done.update(status=BlockRun.BlockRunStatus.COMPLETED)
        lost.update(status=BlockRun.BlockRunStatus.RUNNING)
        jobs = get_job_manager()
        self.assertTrue(getattr(type(jobs).has_block_run_job, "_magekube", False), "the check is Mage's own")
        self.assertTrue(jobs.has_block_run_job(done.id))
        self.assertFalse(jobs.has_block_run_job(lost.id))

    def test_the_range_is_named_outside_it(self):
        self.assertIsNone(magekube_mage.range_note(importlib.metadata.version("mage-ai")), "the tier's own Mage is in range")
        for inside in ("0.9.72", "0.9.79", "0.9.80"):
            self.assertIsNone(magekube_mage.range_note(inside))
        self.assertIsNone(magekube_mage.range_note(None))  # no Mage: a plain python process
        for outside in ("0.9.71", "0.9.81", "0.10.0", "1.0.0rc1"):
            note = magekube_mage.range_note(outside)
            self.assertIn("mage-ai %s is outside" % outside, note)
            self.assertIn("0.9.72 to 0.9.80", note)
            self.assertIn("MAGEKUBE_DISABLE=1", note)
        # The range is the releases the tier runs in (hack/lib.sh).
        with open(os.path.join(os.path.dirname(__file__), "..", "..", "..", "hack", "lib.sh")) as f:
            lib = dict(line.strip().split("=", 1) for line in f if line.startswith("MAGE_AI_"))
        tested = sorted([lib["MAGE_AI_VERSION"]] + lib["MAGE_AI_RANGE"].strip('"').split(), key=magekube_mage._release)
        self.assertEqual((tested[0], tested[-1]), magekube_mage.MAGE_RANGE)

    def test_no_agent_fails_within_claim_timeout(self):
        _, run = make_pipeline("lonely_pipe", ["load"])
        br = block_run(run, "load")
        os.environ["MAGEKUBE_CLAIM_TIMEOUT"] = "1"
        try:
            start = time.monotonic()
            err = run_block(run, br)
            took = time.monotonic() - start
        finally:
            del os.environ["MAGEKUBE_CLAIM_TIMEOUT"]
        self.assertIsNotNone(err)
        self.assertIn("did not claim", str(err))
        self.assertLess(took, 30)
        self.assertEqual(fresh(BlockRun, br.id).status, BlockRun.BlockRunStatus.FAILED)
        rid = magekube_mage.run_id("block", br.id, "lonely_pipe", "load")
        self.assertFalse(os.path.exists(os.path.join(ROOT, "requests", rid + ".json")), "request left behind")

    def test_stop_pipeline_run_cancels_running_block_jobs(self):
        """The block run waits in a process of Mage's own job queue, which
        stop_pipeline_run kills with SIGKILL, as in the Mage server."""
        from mage_ai.orchestration.job_manager import JobType, get_job_manager

        pipeline, run = make_pipeline("cancel_blocks_pipe", ["load"])
        br = block_run(run, "load")
        with Agent(lambda r: "hold") as agent:
            jobs = get_job_manager()
            jobs.start()  # as Mage's scheduler_manager does
            self.addCleanup(jobs.stop)
            jobs.add_job(JobType.BLOCK_RUN, br.id, scheduler.run_block, run.id, br.id, {}, {})
            wait_for(lambda: agent.held, timeout=60)
            scheduler.stop_pipeline_run(fresh(PipelineRun, run.id), pipeline)
            wait_for(lambda: not agent.held)
        rid = agent.seen[0]["id"]
        self.assertTrue(os.path.exists(os.path.join(ROOT, "runs", rid, "cancel")))
        self.assertEqual(fresh(PipelineRun, run.id).status, PipelineRun.PipelineRunStatus.CANCELLED)
        self.assertEqual(fresh(BlockRun, br.id).status, BlockRun.BlockRunStatus.CANCELLED)


class PipelineRuns(unittest.TestCase):
    def test_pipeline_success(self):
        _, run = make_pipeline("whole_pipe", ["load", "clean", "save"], one_process=True)
        with Agent(lambda r: "Succeeded") as agent:
            scheduler.run_pipeline(run.id, {}, {})
        (req,) = agent.seen
        self.assertEqual((req["kind"], req["pipeline_run_id"], req["trigger_name"]), ("pipeline", run.id, "daily etl"))
        self.assertIn("--pipeline-run-id", req["command"])

    def test_pipeline_cancel_deletes_its_job(self):
        pipeline, run = make_pipeline("cancel_pipe", ["load", "save"], one_process=True)
        result = {}

        def go():
            try:
                scheduler.run_pipeline(run.id, {}, {})
            except Exception as e:
                result["err"] = e

        with Agent(lambda r: "hold") as agent:
            t = threading.Thread(target=go)
            t.start()
            wait_for(lambda: agent.held)
            fresh(PipelineRun, run.id).update(executor_type="k8s")
            scheduler.stop_pipeline_run(fresh(PipelineRun, run.id), pipeline)
            t.join(30)
        self.assertFalse(t.is_alive())
        self.assertIn("Cancelled", str(result.get("err")))
        self.assertTrue(os.path.exists(os.path.join(ROOT, "runs", agent.seen[0]["id"], "cancel")))
        self.assertEqual(fresh(PipelineRun, run.id).status, PipelineRun.PipelineRunStatus.CANCELLED)


class StatusFile(unittest.TestCase):
    def test_special_files_do_not_block(self):
        rid = "block-9999-fifo"
        run_dir = os.path.join(ROOT, "runs", rid)
        os.makedirs(run_dir)
        os.mkfifo(os.path.join(run_dir, "status.json"))
        start = time.monotonic()
        self.assertIsNone(magekube_mage.read_status(rid, ROOT))
        self.assertLess(time.monotonic() - start, 1)
        os.remove(os.path.join(run_dir, "status.json"))
        os.symlink("/dev/zero", os.path.join(run_dir, "status.json"))
        self.assertIsNone(magekube_mage.read_status(rid, ROOT))

    def test_wait_wakes_on_the_status_write(self):
        """wait() learns of a terminal status from inotify, not its poll:
        with a 30 s poll it still returns at once."""
        rid = "block-9997-inotify"
        os.makedirs(os.path.join(ROOT, "runs", rid))
        done = threading.Event()
        t = threading.Thread(target=lambda: (magekube_mage.wait(rid, ROOT, interval=30), done.set()))
        t.start()
        time.sleep(0.2)
        path = os.path.join(ROOT, "runs", rid, "status.json")
        with open(path + ".tmp", "w") as f:
            json.dump({"phase": "Succeeded"}, f)
        os.replace(path + ".tmp", path)
        self.assertTrue(done.wait(5), "wait() did not wake on the status write")
        t.join()

    def test_wait_leaves_no_inotify_descriptor_open(self):
        """wait() hands its inotify descriptor to a closer thread (the
        kernel takes an RCU grace period to close one): each is closed."""

        def inotify_fds():
            n = 0
            for fd in os.listdir("/proc/self/fd"):
                try:
                    n += os.readlink("/proc/self/fd/" + fd) == "anon_inode:inotify"
                except OSError:
                    pass  # the listing's own descriptor
            return n

        before = inotify_fds()
        for i in range(20):
            rid = "block-9996-close-%d" % i
            os.makedirs(os.path.join(ROOT, "runs", rid))
            with open(os.path.join(ROOT, "runs", rid, "status.json"), "w") as f:
                json.dump({"phase": "Succeeded"}, f)
            self.assertEqual(magekube_mage.wait(rid, ROOT)["phase"], "Succeeded")
        wait_for(lambda: inotify_fds() <= before, timeout=10)

    def test_logger_is_mages(self):
        """Mage's executors carry a DictLogger: info(message, **tags)."""
        from mage_ai.data_preparation.logging.logger import DictLogger
        import logging

        rid = "block-9998-log"
        os.makedirs(os.path.join(ROOT, "runs", rid))
        with open(os.path.join(ROOT, "runs", rid, "status.json"), "w") as f:
            json.dump({"phase": "Succeeded"}, f)
        status = magekube_mage.wait(rid, ROOT, logger=DictLogger(logging.getLogger("t")))
        self.assertEqual(status["phase"], "Succeeded")


def wait_for(cond, timeout=20):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in %ss" % timeout)
        time.sleep(0.02)


if __name__ == "__main__":
    unittest.main()
