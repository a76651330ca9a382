"""Where the tests' Mage lives: environment Mage reads when its modules
are first imported, so every test module imports this one first."""
import atexit
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = tempfile.mkdtemp(prefix="magekube-mage-")
ROOT = os.path.join(WORK, "magekube")
REPO = os.path.join(WORK, "default_repo")
# The server pod both Mage's executor and the agent build Jobs from.
SERVER_POD = os.path.join(HERE, "..", "..", "..", "pkg", "jobspec", "testdata", "pod.yaml")

os.environ["MAGE_DATABASE_CONNECTION_URL"] = "sqlite:///%s/mage.db" % WORK
os.environ["MAGE_DATA_DIR"] = os.path.join(WORK, "mage_data")
os.environ["MAGEKUBE_DIR"] = ROOT
# Mage's k8s executor reads its own pod by HOSTNAME in KUBE_NAMESPACE.
os.environ["HOSTNAME"] = "mage-server-7d9f8-abcde"
os.environ["KUBE_NAMESPACE"] = "mage"
os.environ.pop("MAGE_CLUSTER_UUID", None)
os.environ.pop("K8S_CONFIG_FILE", None)
os.environ.pop("MAGEKUBE_DISABLE", None)


def _mage_container_env():
    """The Mage process runs with its container's env: the literal values of
    the server pod's Mage container, which the agent's templates read."""
    import yaml

    with open(SERVER_POD) as f:
        pod = yaml.safe_load(f)
    for e in pod["spec"]["containers"][0].get("env") or []:
        if "value" in e:
            os.environ[e["name"]] = e["value"]


_mage_container_env()
sys.path.insert(0, os.path.dirname(HERE))

_ready = False


def mage_project():
    """Mage's own project and database, made once per process: init_repo,
    no usage statistics (the tests reach nothing outside this machine),
    Mage's migrations."""
    global _ready
    from mage_ai.data_preparation.repo_manager import init_repo, set_repo_path
    from mage_ai.orchestration.db.database_manager import database_manager

    if _ready:
        set_repo_path(REPO)  # another module's project may be the current one
        return

    init_repo(REPO)
    with open(os.path.join(REPO, "metadata.yaml"), "a") as f:
        f.write("\nhelp_improve_mage: false\n")
    set_repo_path(REPO)
    database_manager.run_migrations()
    _ready = True


atexit.register(shutil.rmtree, WORK, True)
