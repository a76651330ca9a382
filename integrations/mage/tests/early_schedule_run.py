"""One scenario of early scheduling inside the pinned mage-ai, in a
process of its own (its own project and SQLite database): Mage's real
scheduler loop (LoopTimeTrigger) and its real job queue (ProcessQueue
workers running run_block) in a child process, the trigger installed as
sitecustomize installs it, and an agent thread here that ends each
request's run. test_early_schedule.py runs it and reads the one JSON line
it prints last: Mage's own pipeline-run and block-run rows, every
request the agent saw, and the gaps between a block's end and its
downstream blocks' requests.

Usage: python early_schedule_run.py '{"interval": 1, "runs": 3, ...}'
  interval  the scheduler loop's SCHEDULER_TRIGGER_INTERVAL (seconds)
  runs      pipeline runs started at once
  early     false sets MAGEKUBE_EARLY_SCHEDULE=0
  fail      a block that fails in every run
  cancel    a block held running until Mage cancels the pipeline run
  within    seconds to wait for every run to end
"""
import json
import os
import shutil
import signal
import sys
import threading
import time

SCENARIO = json.loads(sys.argv[1])
if not SCENARIO.get("early", True):
    os.environ["MAGEKUBE_EARLY_SCHEDULE"] = "0"

from magesetup import REPO, ROOT, WORK, mage_project  # noqa: E402,I001 (first: Mage reads its environment on import)

import magekube_mage  # noqa: E402

magekube_mage.install()  # what sitecustomize does at interpreter start

from mage_ai.data_preparation.models.block import Block  # noqa: E402
from mage_ai.data_preparation.models.pipeline import Pipeline  # noqa: E402
from mage_ai.orchestration import pipeline_scheduler_original as scheduler  # noqa: E402
from mage_ai.orchestration.db.models.schedules import BlockRun, PipelineRun, PipelineSchedule  # noqa: E402
from mage_ai.orchestration.db.process import create_process  # noqa: E402
from test_real_mage import Agent  # noqa: E402

# A chain and a fan-out: load -> (a, b, c) -> join -> report.
BLOCKS = [("load", []), ("a", ["load"]), ("b", ["load"]), ("c", ["load"]), ("join", ["a", "b", "c"]), ("report", ["join"])]
FINAL = ("completed", "failed", "cancelled")


def make_pipeline(uuid):
    pipeline = Pipeline.create(uuid, repo_path=REPO)
    for name, upstream in BLOCKS:
        block = Block.create(name, "transformer" if upstream else "data_loader", REPO, pipeline=pipeline,
                             upstream_block_uuids=upstream, language="python")
        block.update(dict(executor_type="k8s"))
    return Pipeline.get(uuid, repo_path=REPO)


def scheduler_loop(interval):
    """What Mage's run_scheduler does, after its migrations: start the job
    manager, then loop."""
    from mage_ai.orchestration.job_manager import get_job_manager
    from mage_ai.orchestration.triggers.loop_time_trigger import LoopTimeTrigger

    get_job_manager().start()
    LoopTimeTrigger(trigger_interval=interval).start()


class TimedAgent(Agent):
    """The test agent, recording when each run was claimed and ended."""

    def __init__(self, outcome):
        super().__init__(outcome)
        self.claimed, self.ended = {}, {}

    def claim(self, path):
        self.claimed[os.path.basename(path)[: -len(".json")]] = time.monotonic()
        super().claim(path)

    def status(self, rid, phase, reason="", message=""):
        super().status(rid, phase, reason, message)
        if phase in magekube_mage.TERMINAL:
            self.ended[rid] = time.monotonic()


def main():
    mage_project()
    for d in ("requests", "runs"):  # as the agent makes them at start
        os.makedirs(os.path.join(ROOT, d), exist_ok=True)
    pipeline = make_pipeline("fan")
    schedule = PipelineSchedule.create(name="daily etl", pipeline_uuid=pipeline.uuid, schedule_type="time")
    runs = []
    for _ in range(SCENARIO.get("runs", 1)):
        run = PipelineRun.create(pipeline_schedule_id=schedule.id, pipeline_uuid=pipeline.uuid, variables={},
                                 create_block_runs=True)
        scheduler.PipelineScheduler(run).start(should_schedule=False)
        runs.append(run.id)

    fail, cancel = SCENARIO.get("fail"), SCENARIO.get("cancel")

    def outcome(req):
        if req["block_uuid"] == cancel:
            return "hold"
        time.sleep(0.05)  # a block that takes a moment
        return "Failed" if req["block_uuid"] == fail else "Succeeded"

    proc = create_process(target=scheduler_loop, args=(SCENARIO["interval"],))
    started = time.monotonic()
    with TimedAgent(outcome) as agent:
        proc.start()
        deadline = started + SCENARIO.get("within", 120)
        cancelled = False
        while time.monotonic() < deadline:
            PipelineRun.query.session.expire_all()
            rows = [PipelineRun.query.get(i) for i in runs]
            if cancel and not cancelled and agent.held:
                time.sleep(1)  # Mage's loop may tick meanwhile: nothing more may start
                for r in rows:
                    scheduler.stop_pipeline_run(r, pipeline)
                cancelled = True
                continue
            if all(r.status in FINAL for r in rows):
                break
            time.sleep(0.1)
        time.sleep(SCENARIO.get("settle", 2))  # any late (duplicate) request would come now
        wall = time.monotonic() - started

    requests = [{"id": r["id"], "block_uuid": r["block_uuid"], "block_run_id": r["block_run_id"],
                 "pipeline_run_id": r["pipeline_run_id"]} for r in agent.seen]
    by_block_run = {r["block_run_id"]: r["id"] for r in agent.seen}
    block_runs = []
    gaps = []
    upstream = dict(BLOCKS)
    PipelineRun.query.session.expire_all()
    for i in runs:
        brs = list(BlockRun.query.filter(BlockRun.pipeline_run_id == i))
        by_uuid = {b.block_uuid: b for b in brs}
        for b in brs:
            block_runs.append({"id": b.id, "pipeline_run_id": i, "block_uuid": b.block_uuid, "status": b.status})
            rid = by_block_run.get(b.id)
            ups = [by_block_run.get(by_uuid[u].id) for u in upstream.get(b.block_uuid, [])]
            if rid in agent.claimed and ups and all(u in agent.ended for u in ups):
                gaps.append(agent.claimed[rid] - max(agent.ended[u] for u in ups))
    result = {
        "pipeline_runs": {str(i): PipelineRun.query.get(i).status for i in runs},
        "block_runs": block_runs,
        "requests": requests,
        "gaps_s": sorted(gaps),
        "wall_s": wall,
        "exit_code": proc.exitcode,
    }
    print(json.dumps(result))
    sys.stdout.flush()
    # The scheduler, its worker pool and its workers share this process
    # group when the test started it as a group of its own: end them all
    # (the test kills the group as well). SIGKILL runs no exit handler:
    # this run's Mage directory goes first.
    if os.getpgid(0) == os.getpid():
        shutil.rmtree(WORK, ignore_errors=True)
        os.killpg(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    main()
