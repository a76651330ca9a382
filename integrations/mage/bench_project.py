"""The project `make bench` dispatches runs of: made by the pinned mage-ai
(its init_repo, Pipeline and Block models), so the agent reads the
metadata.yaml files Mage writes. One pipeline, `etl`, of BLOCKS python
blocks `block_0` … chained one after the other, each with executor_type
k8s; the project's k8s_executor_config names the Jobs' prefix.

  python bench_project.py --repo R --blocks 20
"""
import argparse
import os
import shutil
import tempfile


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repo", required=True, help="the project directory to make (must not exist)")
    p.add_argument("--blocks", type=int, default=20)
    a = p.parse_args()

    data = tempfile.mkdtemp(prefix="magekube-bench-mage-")
    os.environ.update({
        "MAGE_DATABASE_CONNECTION_URL": "sqlite:///%s/mage.db" % data,
        "MAGE_DATA_DIR": data,
    })
    try:
        make(a.repo, a.blocks)
    finally:
        shutil.rmtree(data, ignore_errors=True)


def make(repo, blocks):
    from mage_ai.data_preparation.models.block import Block
    from mage_ai.data_preparation.models.pipeline import Pipeline
    from mage_ai.data_preparation.repo_manager import init_repo, set_repo_path

    init_repo(repo)
    with open(os.path.join(repo, "metadata.yaml"), "a") as f:
        f.write("\nk8s_executor_config:\n  job_name_prefix: b\n")
    set_repo_path(repo)
    pipeline = Pipeline.create("etl", repo_path=repo)
    upstream = None
    for i in range(blocks):
        block = Block.create(
            "block_%d" % i, "transformer" if upstream else "data_loader", repo, pipeline=pipeline,
            language="python", upstream_block_uuids=[upstream] if upstream else None)
        block.update(dict(executor_type="k8s"))
        upstream = block.uuid


if __name__ == "__main__":
    main()
