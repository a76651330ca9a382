"""One side of `make bench`'s peer section: N block runs of one Mage
project executed at once through Mage's own K8sBlockExecutor (the pinned
mage-ai: its JobManager creates each Job, polls it every 5 s and deletes
it) or through magekube's trigger (the same class as the trigger installs,
writing a request and waiting on status.json). Run with the pinned
mage-ai's python (hack/mage-venv.sh) against the bench's cluster; the bench
plays the pods and reads the API server's audit log. Prints one JSON
object: each run's call and return times (time.time()), its outcome, and
this process's CPU seconds and peak RSS.

  python bench_peer.py --mode mage|magekube --ids 1-50 --namespace bench \\
      --pod mage-server --kubeconfig K --magekube-dir D --work W [--db-rows]
"""
import argparse
import json
import os
import resource
import sys
import threading
import time


def parse_ids(spec):
    first, _, last = spec.partition("-")
    return list(range(int(first), int(last or first) + 1))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=["mage", "magekube"], required=True)
    p.add_argument("--ids", required=True, help="block run ids, FIRST-LAST")
    p.add_argument("--namespace", required=True)
    p.add_argument("--pod", required=True, help="the Mage server pod the Jobs inherit from")
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--magekube-dir", required=True)
    p.add_argument("--work", required=True, help="a directory for Mage's project and database")
    p.add_argument("--db-rows", action="store_true",
                   help="make pipeline run 1 and block runs 1..LAST in Mage's database, for Jobs that run `mage run` for real")
    a = p.parse_args()

    # What Mage reads when its modules are first imported.
    os.environ.update({
        "KUBECONFIG": a.kubeconfig,
        "HOSTNAME": a.pod,  # Mage's JobManager reads its own pod by HOSTNAME
        "KUBE_NAMESPACE": a.namespace,
        "MAGE_DATABASE_CONNECTION_URL": "sqlite:///%s/mage.db" % a.work,
        "MAGE_DATA_DIR": os.path.join(a.work, "mage_data"),
        "MAGEKUBE_DIR": a.magekube_dir,
    })
    os.environ.pop("MAGE_CLUSTER_UUID", None)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

    from mage_ai.data_preparation.executors import k8s_block_executor
    from mage_ai.data_preparation.models.block import Block
    from mage_ai.data_preparation.models.pipeline import Pipeline
    from mage_ai.data_preparation.repo_manager import init_repo, set_repo_path
    from mage_ai.orchestration.db.database_manager import database_manager

    import magekube_mage

    repo = os.path.join(a.work, "repo")
    init_repo(repo)
    with open(os.path.join(repo, "metadata.yaml")) as f:
        text = f.read().replace("help_improve_mage: true", "help_improve_mage: false")
    # One retry, so a block whose first attempt fails can still succeed.
    text += "\nk8s_executor_config:\n  job_name_prefix: peer\n  job:\n    backoff_limit: 1\n"
    with open(os.path.join(repo, "metadata.yaml"), "w") as f:
        f.write(text)
    set_repo_path(repo)
    database_manager.run_migrations()
    pipeline = Pipeline.create("peer", repo_path=repo)
    block = Block.create("work", "data_loader", repo, pipeline=pipeline, language="python")
    block.update(dict(executor_type="k8s"))
    pipeline = Pipeline.get("peer", repo_path=repo)
    if a.db_rows:
        # What `mage run --pipeline-run-id 1 --block-run-id N` reads in a
        # Job on a real node: Mage's own rows, made through its models.
        from mage_ai.orchestration.db.models.schedules import BlockRun, PipelineRun, PipelineSchedule
        schedule = PipelineSchedule.create(name="peer", pipeline_uuid="peer", schedule_type="api")
        run = PipelineRun.create(pipeline_uuid="peer", pipeline_schedule_id=schedule.id, create_block_runs=False)
        last = parse_ids(a.ids)[-1]
        while (BlockRun.query.count() or 0) < last:
            BlockRun.create(pipeline_run_id=run.id, block_uuid="work")

    base = k8s_block_executor.K8sBlockExecutor
    cls = base if a.mode == "mage" else magekube_mage.block_executor_class(base)
    runs = []
    lock = threading.Lock()

    def one(block_run_id):
        executor = cls(pipeline, "work", execution_partition="1/20261129T000000")
        executor.logger = _Quiet()
        call = time.time()
        ok, error = True, ""
        try:
            executor._execute(block_run_id=block_run_id, global_vars={}, pipeline_run_id=1)
        except Exception as e:  # the executor's way of saying the block failed
            ok, error = False, str(e)[:300]
        with lock:
            runs.append({"block_run_id": block_run_id, "call": call, "return": time.time(), "ok": ok, "error": error})

    before = resource.getrusage(resource.RUSAGE_SELF)
    threads = [threading.Thread(target=one, args=(i,)) for i in parse_ids(a.ids)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = resource.getrusage(resource.RUSAGE_SELF)
    json.dump({
        "mode": a.mode,
        "runs": runs,
        "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "peak_rss_mib": after.ru_maxrss / 1024.0,
    }, sys.stdout)
    print()


class _Quiet:
    """A logger that keeps Mage's per-Job lines out of the bench's output."""

    def info(self, *args, **kwargs):
        pass

    warning = error = exception = debug = info


if __name__ == "__main__":
    main()
