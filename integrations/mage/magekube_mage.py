"""Route Mage's Kubernetes executor through the magekube agent.

Mage's executors have no plugin point, so this module replaces the two
classes Mage's ExecutorFactory imports for ``executor_type: k8s``:

* ``K8sBlockExecutor._execute(block_run_id=None, global_vars=None, **kwargs)``
* ``K8sPipelineExecutor.execute(pipeline_run_id=None, global_vars=None, **kwargs)``
  and ``K8sPipelineExecutor.cancel(pipeline_run_id=None)``

with subclasses of Mage's own that write a run request file for the
magekube agent sidecar and wait on the run's ``status.json``. Mage's own
executor would create the Job itself and poll it every 5 seconds; here the
agent builds the same Job (same name, same ``k8s_executor_config``) and
this side only reads a file. The request carries Mage's own ``mage run``
command and the trigger's name. A failed run raises the exception Mage's
executor raises (``Exception('Failed to execute k8s job <name>')``, with
the agent's reason). Cancelling a pipeline run in Mage (its
``cancel_block_runs_and_jobs``, wrapped here) cancels the Jobs of its
block runs through ``runs/<id>/cancel``; so does interrupting the waiting
process. A retried block run (same block_run_id) is a new attempt,
``<id>-a<N>``; a block run Mage runs again after a restart takes the
attempt it finds, still going or ended meanwhile, as Mage's own executor
takes the Job it finds. A request no agent claims within MAGEKUBE_CLAIM_TIMEOUT
seconds (default 60) fails with a message saying the agent is absent.

Early scheduling: Mage's scheduler loop ticks every
SCHEDULER_TRIGGER_INTERVAL seconds (10 by default) and a block run's
downstream block runs wait for the next tick. When a k8s block run ends
(Mage has recorded it), the waiting process sends one datagram to the
scheduler loop's process, whose sleep (``time.sleep`` in Mage's loop
module, replaced here) ends at once: Mage's own tick runs early, in
Mage's own scheduler process, so every scheduling decision stays Mage's,
made one at a time as before. Scheduling from the waiting process
instead (Mage's ``on_block_complete``) would consult that process's own
job queue, where the scheduler's queued block runs are absent, and run
them twice. The same way, the scheduler loop wakes the job queue's
worker pool (which otherwise looks for new jobs once a second) when it
has enqueued and its tick has ended; and an enqueue returns
only once its job is in the queue's pipe, so a pool never finds it empty
and exits with the job still on its way.
MAGEKUBE_EARLY_SCHEDULE=0 turns both off.

Standard library only. ``sitecustomize.py`` next to this file installs it
when the directory is on PYTHONPATH (deploy/manifests/mage-trigger).
"""

import hashlib
import json
import os
import re
import socket
import stat
import sys
import threading
import time

API_VERSION = "magekube/v1"
TERMINAL = ("Succeeded", "Failed", "Cancelled")
BLOCK_MODULE = "mage_ai.data_preparation.executors.k8s_block_executor"
PIPELINE_MODULE = "mage_ai.data_preparation.executors.k8s_pipeline_executor"
SCHEDULER_MODULE = "mage_ai.orchestration.pipeline_scheduler_original"
LOOP_MODULE = "mage_ai.orchestration.triggers.loop_time_trigger"
QUEUE_MODULE = "mage_ai.orchestration.queue.process_queue"
JOBS_MODULE = "mage_ai.orchestration.job_manager"
MODULES = (BLOCK_MODULE, PIPELINE_MODULE, SCHEDULER_MODULE, LOOP_MODULE, QUEUE_MODULE, JOBS_MODULE)
MAX_STATUS_BYTES = 1 << 20
# Room left in a 63-character id for an attempt suffix "-a<N>".
BASE_ID_LENGTH = 56


def root_dir():
    """The agent's directory as the Mage container sees it."""
    return os.environ.get("MAGEKUBE_DIR", "/home/src/.magekube")


def claim_timeout():
    """Seconds a request may wait unclaimed before the agent is declared
    absent (MAGEKUBE_CLAIM_TIMEOUT, default 60)."""
    try:
        return float(os.environ.get("MAGEKUBE_CLAIM_TIMEOUT", "60"))
    except ValueError:
        return 60.0


def run_id(kind, run_number, pipeline_uuid, block_uuid=None):
    """The base run id of a Mage run: [A-Za-z0-9._-], at most 56
    characters, the same for the same Mage run. Attempts after the first
    append "-a<N>" (attempt_id)."""
    base = "%s-%s" % (kind, run_number if run_number is not None else "x")
    tail = re.sub(r"[^A-Za-z0-9.-]+", "-", "%s-%s" % (pipeline_uuid, block_uuid or ""))
    tail = re.sub(r"\.\.+", ".", tail)
    digest = hashlib.sha256(("%s/%s" % (pipeline_uuid, block_uuid)).encode()).hexdigest()[:8]
    tail = tail[: BASE_ID_LENGTH - len(base) - len(digest) - 2].strip("-.")
    return "-".join(p for p in (base, tail, digest) if p)


def attempt_id(base, attempt):
    return base if attempt <= 1 else "%s-a%d" % (base, attempt)


def latest_attempt(base, root=None):
    """The highest attempt of base that has a request or a run directory,
    0 when there is none."""
    root = root or root_dir()
    pattern = re.compile(r"^%s(?:-a(\d+))?$" % re.escape(base))
    latest = 0
    for sub, suffix in (("runs", ""), ("requests", ".json")):
        try:
            names = os.listdir(os.path.join(root, sub))
        except OSError:
            continue
        for name in names:
            if suffix and not name.endswith(suffix):
                continue
            m = pattern.match(name[: len(name) - len(suffix)] if suffix else name)
            if m:
                latest = max(latest, int(m.group(1) or 1))
    return latest


def submit(request, root=None):
    """Write requests/<id>.json atomically (temporary dot file, then rename)."""
    root = root or root_dir()
    requests = os.path.join(root, "requests")
    os.makedirs(requests, exist_ok=True)
    tmp = os.path.join(requests, ".%s.json.tmp" % request["id"])
    with open(tmp, "w") as f:
        json.dump(request, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, os.path.join(requests, request["id"] + ".json"))
    return request["id"]


def read_status(rid, root=None):
    """The run's status.json, or None when it is not there (yet). Every
    pod can write the shared volume, so the file is opened without
    following links and without blocking, must be a regular file and is
    read up to 1 MiB."""
    path = os.path.join(root or root_dir(), "runs", rid, "status.json")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None  # not written yet, being replaced, or a link
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_STATUS_BYTES:
            return None
        data = os.read(fd, MAX_STATUS_BYTES + 1)
    finally:
        os.close(fd)
    try:
        status = json.loads(data)
    except ValueError:
        return None
    return status if isinstance(status, dict) else None


def cancel(rid, root=None):
    """Cancel a run: delete its request if the agent has not claimed it,
    else ask the agent to delete its Job."""
    root = root or root_dir()
    try:
        os.remove(os.path.join(root, "requests", rid + ".json"))
        return
    except FileNotFoundError:
        pass
    run_dir = os.path.join(root, "runs", rid)
    if os.path.isdir(run_dir) and not os.path.islink(run_dir):
        with open(os.path.join(run_dir, "cancel"), "w") as f:
            f.write("cancelled by Mage\n")


# RETURNED_FILE in a run's directory: a Mage process has taken the
# run's final status (and raised or returned it); _returned, the same for
# this process, which a full volume cannot lose.
RETURNED_FILE = "mage-returned"
_returned = set()


def mark_returned(rid, root=None):
    """Record that a Mage process took the run's final status. The run
    directory is the agent's on a volume every pod can write: it is
    opened without following links, and a volume that refuses the file
    (full, read-only) costs only the adoption after a Mage restart."""
    _returned.add(rid)
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    try:
        dfd = os.open(os.path.join(root or root_dir(), "runs", rid), os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | nofollow)
    except OSError:
        return
    try:
        os.close(os.open(RETURNED_FILE, os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK | nofollow, 0o644, dir_fd=dfd))
    except (OSError, NotImplementedError):
        pass
    finally:
        os.close(dfd)


def was_returned(rid, root=None):
    try:
        os.lstat(os.path.join(root or root_dir(), "runs", rid, RETURNED_FILE))
        return True
    except OSError:
        return False


def cancel_latest(base, root=None):
    """Cancel the newest attempt of a Mage run, if it has not ended."""
    attempt = latest_attempt(base, root)
    if attempt:
        rid = attempt_id(base, attempt)
        status = read_status(rid, root)
        if not status or status.get("phase") not in TERMINAL:
            cancel(rid, root)


def heartbeat_age(root=None):
    """Seconds since the agent last wrote its heartbeat, None if never."""
    try:
        return max(0.0, time.time() - os.stat(os.path.join(root or root_dir(), "agent", "heartbeat")).st_mtime)
    except OSError:
        return None


class AgentAbsent(Exception):
    """No agent claimed the request in time."""


def wait(rid, root=None, interval=0.2, timeout=None, logger=None, unclaimed_after=None):
    """Wait until the run's status is terminal and return it. The status is
    a local file the agent rewrites on every transition; reading it costs
    no API call. A request still unclaimed after unclaimed_after seconds is
    withdrawn and AgentAbsent raised."""
    root = root or root_dir()
    start = time.monotonic()
    deadline = None if timeout is None else start + timeout
    last = None
    with _Watch(os.path.join(root, "runs"), rid) as watch:
        while True:
            status = read_status(rid, root)
            if status:
                phase = (status.get("phase"), status.get("reason"))
                if logger is not None and phase != last:
                    # Mage's loggers take one message and keyword tags only.
                    logger.info("magekube run %s: %s %s %s" % (rid, phase[0], phase[1] or "", status.get("message") or ""))
                last = phase
                if status.get("phase") in TERMINAL:
                    return status
            elif unclaimed_after is not None and time.monotonic() - start > unclaimed_after:
                _withdraw(rid, root, unclaimed_after)
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError("magekube run %s: no terminal status after %ss" % (rid, timeout))
            watch.wait(interval)


def _withdraw(rid, root, after):
    try:
        os.remove(os.path.join(root, "requests", rid + ".json"))
    except FileNotFoundError:
        return  # claimed meanwhile: its status follows
    age = heartbeat_age(root)
    seen = "no heartbeat from the agent was ever written" if age is None else "the agent's last heartbeat is %ds old" % age
    raise AgentAbsent(
        "the magekube agent did not claim run %s within %gs (%s under %s/agent): is the magekube-agent sidecar running "
        "and does it mount the same volume? (MAGEKUBE_CLAIM_TIMEOUT sets the wait)" % (rid, after, seen, root)
    )


def run(request, root=None, logger=None, timeout=None):
    """Submit the next attempt of a Mage run (or follow one still going),
    wait, and raise Mage's failure unless it succeeded. Only an
    interruption of this process (KeyboardInterrupt, SystemExit) cancels
    the run; the trigger's own errors never do."""
    root = root or root_dir()
    base = request["id"]
    attempt = latest_attempt(base, root)
    rid = attempt_id(base, attempt)
    status = read_status(rid, root) if attempt else None
    ended = bool(status) and status.get("phase") in TERMINAL
    # An attempt still going is followed. One that ended with no Mage
    # process waiting (Mage restarted and runs again the block run it
    # found running) is taken as it ended, as Mage's own executor takes a
    # Job it finds. One a Mage process has returned is done: this call is
    # a retry, a new attempt.
    if not attempt or ended and (rid in _returned or was_returned(rid, root)):
        attempt += 1
        rid = request["id"] = attempt_id(base, attempt)
        if attempt > 1:
            request["attempt"] = attempt
        submit(request, root)
    try:
        status = wait(rid, root, logger=logger, timeout=timeout, unclaimed_after=claim_timeout())
    except AgentAbsent as e:
        raise Exception("Failed to execute k8s job %s: %s" % (rid, e)) from None
    except (KeyboardInterrupt, SystemExit):
        cancel(rid, root)
        raise
    mark_returned(rid, root)
    if status.get("phase") != "Succeeded":
        raise Exception(
            "Failed to execute k8s job %s: %s: %s (magekube run %s)"
            % (status.get("job") or rid, status.get("reason"), status.get("message"), rid)
        )
    return status


def _variables(global_vars):
    """The JSON-serialisable part of Mage's global variables."""
    out = {}
    for k, v in (global_vars or {}).items():
        try:
            json.dumps(v)
        except (TypeError, ValueError):
            continue
        out[k] = v
    return out


ENV_VAR_CALL = re.compile(r"""env_var\(\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]""")


def _template_env(pipeline):
    """The values of the env vars the executor config's templates name
    (project and pipeline metadata.yaml, K8S_CONFIG_FILE), as this process
    sees them: what Mage's own executor would render, envFrom and valueFrom
    included. Only those names travel with the request."""
    repo = getattr(pipeline, "repo_path", None) or os.getcwd()
    files = [os.path.join(repo, "metadata.yaml"), os.path.join(repo, "pipelines", pipeline.uuid, "metadata.yaml")]
    if os.environ.get("K8S_CONFIG_FILE"):
        files.append(os.environ["K8S_CONFIG_FILE"])
    names = set()
    for path in files:
        try:
            with open(path, errors="replace") as f:
                names.update(ENV_VAR_CALL.findall(f.read(1 << 21)))
        except OSError:
            continue
    return {n: os.environ[n] for n in sorted(names) if n in os.environ}


def _common(pipeline, execution_partition, global_vars):
    req = {
        "apiVersion": API_VERSION,
        "project_dir": getattr(pipeline, "repo_path", None) or os.getcwd(),
        "pipeline_uuid": pipeline.uuid,
    }
    if execution_partition:
        req["execution_partition"] = execution_partition
    variables = _variables(global_vars)
    if variables:
        req["variables"] = variables
    if os.environ.get("TRACEPARENT"):
        req["traceparent"] = os.environ["TRACEPARENT"]
    env = _template_env(pipeline)
    if env:
        req["env"] = env
    return req


def pipeline_run_traceparent(project_dir, pipeline_uuid, pipeline_run_id):
    """A W3C traceparent shared by every block run of one Mage pipeline
    run, so the pipeline run is one trace: the trace id and its (virtual)
    parent span id are hashes of the project, pipeline and run id."""
    key = "magekube/%s/%s/%s" % (project_dir, pipeline_uuid, pipeline_run_id)
    trace_id = hashlib.sha256(key.encode()).hexdigest()[:32]
    parent = hashlib.sha256((key + "/parent").encode()).hexdigest()[:16]
    return "00-%s-%s-01" % (trace_id, parent)


def _trigger_name(pipeline_run_id, logger=None):
    """The run's trigger (pipeline schedule) name, as Mage's executor reads
    it for job_name_prefix "{trigger_name}"."""
    if not pipeline_run_id:
        return None
    try:
        from sqlalchemy.orm import Session

        from mage_ai.orchestration.db import db_connection
        from mage_ai.orchestration.db.models.schedules import PipelineRun

        # A session of its own, closed at once: the query never holds a
        # pooled connection, nor touches the caller's session (executors
        # running in threads of one process would otherwise exhaust the
        # pool and wait out its 30 s timeout).
        with Session(bind=db_connection.session.get_bind()) as session:
            pipeline_run = session.get(PipelineRun, int(pipeline_run_id))
            schedule = pipeline_run.pipeline_schedule if pipeline_run else None
            return schedule.name if schedule else None
    except Exception as e:  # the name only labels the Job
        if logger is not None:
            logger.warning("magekube: no trigger name for pipeline run %s: %s" % (pipeline_run_id, e))
        return None


def block_executor_class(base):
    """A subclass of Mage's K8sBlockExecutor that runs through magekube."""

    class K8sBlockExecutor(base):
        def _execute(self, block_run_id=None, global_vars=None, **kwargs):
            logger = getattr(self, "logger", None)
            req = _common(self.pipeline, self.execution_partition, global_vars)
            req.update(
                id=run_id("block", block_run_id, self.pipeline.uuid, self.block_uuid),
                kind="block",
                block_uuid=self.block_uuid,
                # Mage's own command, argument for argument (data integration
                # streams' --template-runtime-configuration included).
                command=self._run_commands(block_run_id=block_run_id, global_vars=global_vars, **kwargs),
            )
            if block_run_id is not None:
                req["block_run_id"] = int(block_run_id)
            pipeline_run_id = kwargs.get("pipeline_run_id")
            if pipeline_run_id:
                req["pipeline_run_id"] = int(pipeline_run_id)
                req.setdefault("traceparent", pipeline_run_traceparent(req["project_dir"], self.pipeline.uuid, pipeline_run_id))
            trigger = _trigger_name(pipeline_run_id, logger)
            if trigger:
                req["trigger_name"] = trigger
            run(req, logger=logger)

        def execute(self, *args, **kwargs):
            # Mage records the block run's end in these callbacks; its
            # scheduler's next tick may run as soon as they return.
            for name in ("on_complete", "on_failure"):
                if kwargs.get(name) is not None:
                    kwargs[name] = _then_wake(kwargs[name])
            return super().execute(*args, **kwargs)

    K8sBlockExecutor.__qualname__ = K8sBlockExecutor.__name__
    K8sBlockExecutor.__module__ = base.__module__
    return K8sBlockExecutor


def pipeline_executor_class(base):
    """A subclass of Mage's K8sPipelineExecutor that runs through magekube."""

    class K8sPipelineExecutor(base):
        def _request(self, pipeline_run_id, global_vars, **kwargs):
            req = _common(self.pipeline, self.execution_partition, global_vars)
            req.update(id=run_id("pipeline", pipeline_run_id, self.pipeline.uuid), kind="pipeline")
            if pipeline_run_id is not None:
                req["pipeline_run_id"] = int(pipeline_run_id)
            trigger = _trigger_name(pipeline_run_id, getattr(self, "logger", None))
            if trigger:
                req["trigger_name"] = trigger
            req["command"] = self._run_commands(global_vars=global_vars, pipeline_run_id=pipeline_run_id, **kwargs)
            return req

        def execute(self, pipeline_run_id=None, global_vars=None, **kwargs):
            run(self._request(pipeline_run_id, global_vars, **kwargs), logger=getattr(self, "logger", None))

        def cancel(self, pipeline_run_id=None, **kwargs):
            if pipeline_run_id is not None:
                cancel_latest(run_id("pipeline", pipeline_run_id, self.pipeline.uuid))

    K8sPipelineExecutor.__qualname__ = K8sPipelineExecutor.__name__
    K8sPipelineExecutor.__module__ = base.__module__
    return K8sPipelineExecutor


def cancelling_block_runs(original):
    """Wrap Mage's cancel_block_runs_and_jobs (what stop_pipeline_run and
    the UI's cancel call): Mage kills a block run's waiting process with
    SIGKILL, which no code in it can see, so the Jobs of the block runs it
    is about to cancel are cancelled here first."""

    def cancel_block_runs_and_jobs(pipeline_run, pipeline=None, *args, **kwargs):
        try:
            for b in pipeline_run.block_runs:
                if b.status in ("initial", "queued", "running"):
                    cancel_latest(run_id("block", b.id, pipeline_run.pipeline_uuid, b.block_uuid))
        except Exception as e:  # never keep Mage from cancelling
            import sys

            print("magekube: cancelling the Jobs of pipeline run %s: %s" % (getattr(pipeline_run, "id", "?"), e), file=sys.stderr)
        return original(pipeline_run, pipeline, *args, **kwargs)

    cancel_block_runs_and_jobs._magekube = True
    return cancel_block_runs_and_jobs


def early_scheduling():
    """MAGEKUBE_EARLY_SCHEDULE: "0" leaves Mage's scheduler to its tick."""
    return os.environ.get("MAGEKUBE_EARLY_SCHEDULE", "1") != "0"


def wake_address(role="scheduler", pid=None):
    """A sleeping Mage loop's datagram socket: an abstract Unix socket (no
    file), one per user and agent directory in the pod's network
    namespace, so Mage's own processes find it with nothing passed. The
    scheduler loop has one; a job queue's worker pool has one keyed by
    the pid of the process whose queue it serves."""
    key = hashlib.sha256(os.path.abspath(root_dir()).encode()).hexdigest()[:16]
    name = "\0magekube-%s-%d-%s" % (role, os.getuid(), key)
    return name if pid is None else "%s-%d" % (name, pid)


def _pool_address():
    return wake_address("pool", os.getppid())


def _send_wake(address):
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.setblocking(False)
            s.sendto(b"1", address)
        return True
    except OSError:
        return False


def wake_scheduler():
    """Ask Mage's scheduler loop to tick now. Nothing listening (another
    pod's scheduler, early scheduling off there, not Linux) leaves the
    tick to its interval."""
    return early_scheduling() and _send_wake(wake_address())


def _flushed(q, within=0.2):
    """Wait until a multiprocessing queue's feeder thread has taken what
    was put (its private _buffer; a short fixed wait without it)."""
    buffer = getattr(q, "_buffer", None)
    if buffer is None:
        time.sleep(0.02)
        return
    deadline = time.monotonic() + within
    while buffer and time.monotonic() < deadline:
        time.sleep(0.001)
    time.sleep(0.002)  # the feeder's write into the pipe


_pool_wake_pending = False


def _wake_pool_if_pending():
    """Wake the worker pool this process started, if an enqueue asked.
    The scheduler loop calls it as it goes to sleep, after its tick's
    clean_up_jobs: Mage's clean-up deletes the entry of a job a worker has
    taken from the queue but not yet marked (the worker then dies on a
    KeyError and the block run waits for a later tick), so a worker woken
    in the middle of a tick would meet that race on every level."""
    global _pool_wake_pending
    if _pool_wake_pending:
        _pool_wake_pending = False
        _send_wake(wake_address("pool", os.getpid()))


def waking_enqueue(enqueue):
    """Wrap ProcessQueue.enqueue: the job reaches the queue's pipe before
    enqueue goes on (Mage starts a worker pool right after its put, and a
    pool that finds the pipe still empty exits, stranding the job); the
    worker pool this process started is woken when its scheduler loop
    next sleeps (_wake_pool_if_pending)."""

    def wrapped(self, *args, **kwargs):
        q = getattr(self, "queue", None)
        put = getattr(q, "put", None)
        if put is not None:
            def put_and_flush(obj, *a, **kw):
                put(obj, *a, **kw)
                _flushed(q)

            q.put = put_and_flush
        global _pool_wake_pending
        try:
            return enqueue(self, *args, **kwargs)
        finally:
            if put is not None:
                try:
                    del q.put
                except AttributeError:
                    pass
            _pool_wake_pending = True

    wrapped._magekube = True
    return wrapped


def _then_wake(callback):
    def wrapped(*args, **kwargs):
        try:
            return callback(*args, **kwargs)
        finally:
            wake_scheduler()

    return wrapped


class WakingTime:
    """Mage's scheduler loop module's ``time``: everything the real
    module has, and a ``sleep`` that a datagram at wake_address() ends
    early. A wake during a tick ends the next sleep at once (the tick may
    have read the database before that block run ended)."""

    _magekube = True

    def __init__(self, real, address=wake_address, before=None):
        self._real = real
        self._address = address
        self._before = before  # called as each sleep begins
        self._sock = None
        self._pid = None

    def __getattr__(self, name):
        return getattr(self._real, name)

    def _socket(self):
        if self._pid != os.getpid():  # bound in the process that loops
            self._pid, self._sock = os.getpid(), None
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                s.bind(self._address())
                self._sock = s
            except OSError as e:
                print("magekube: early scheduling off in process %d (%s): Mage's scheduler ticks at its interval" % (os.getpid(), e), file=sys.stderr)
        return self._sock

    def sleep(self, seconds):
        if self._before is not None:
            self._before()
        sock = self._socket()
        if sock is None or seconds <= 0:
            return self._real.sleep(max(seconds, 0))
        deadline = self._real.monotonic() + seconds
        try:
            sock.settimeout(seconds)
            sock.recv(16)
        except (TimeoutError, socket.timeout):
            return
        except OSError:
            return self._real.sleep(max(0, deadline - self._real.monotonic()))
        sock.setblocking(False)  # one tick for every wake that came meanwhile
        try:
            while sock.recv(16):
                pass
        except OSError:
            pass


def ended_runs_not_crashed(has_block_run_job):
    """Wrap JobManager.has_block_run_job, which Mage's crashed-run check
    asks for each block run it has just read as running or queued: one
    whose job is gone is reset to initial and run again. A block run that
    ended between the read and the question (its job finished and
    recorded it) is not crashed, and running it again would run it twice:
    for a block run whose row now says completed or failed, the answer is
    yes. (Mage's other caller, its cancel path, asks of cancelled block
    runs only, whose answer stays Mage's.)"""

    def wrapped(self, block_run_id, *args, **kwargs):
        if has_block_run_job(self, block_run_id, *args, **kwargs):
            return True
        try:
            from mage_ai.orchestration.db.models.schedules import BlockRun

            block_run = BlockRun.query.get(block_run_id)
            if block_run is None:
                return False
            block_run.refresh()
            return block_run.status in (BlockRun.BlockRunStatus.COMPLETED, BlockRun.BlockRunStatus.FAILED)
        except Exception as e:  # Mage's own answer stands
            print("magekube: reading block run %s: %s" % (block_run_id, e), file=sys.stderr)
            return False

    wrapped._magekube = True
    return wrapped


def patch_module(module):
    """Replace the executor class of one of Mage's two k8s modules, wrap
    the scheduler's cancel path, or make the scheduler loop's and the job
    queue's sleeps wakeable."""
    if module.__name__ == BLOCK_MODULE and not getattr(module.K8sBlockExecutor, "_magekube", False):
        module.K8sBlockExecutor = block_executor_class(module.K8sBlockExecutor)
        module.K8sBlockExecutor._magekube = True
    elif module.__name__ == PIPELINE_MODULE and not getattr(module.K8sPipelineExecutor, "_magekube", False):
        module.K8sPipelineExecutor = pipeline_executor_class(module.K8sPipelineExecutor)
        module.K8sPipelineExecutor._magekube = True
    elif module.__name__ == SCHEDULER_MODULE and hasattr(module, "cancel_block_runs_and_jobs"):
        if not getattr(module.cancel_block_runs_and_jobs, "_magekube", False):
            module.cancel_block_runs_and_jobs = cancelling_block_runs(module.cancel_block_runs_and_jobs)
    elif module.__name__ == LOOP_MODULE and early_scheduling() and not getattr(getattr(module, "time", None), "_magekube", False):
        if getattr(module, "time", None) is time:
            module.time = WakingTime(time, before=_wake_pool_if_pending)
    elif module.__name__ == JOBS_MODULE and hasattr(module, "JobManager"):
        if not getattr(module.JobManager.has_block_run_job, "_magekube", False):
            module.JobManager.has_block_run_job = ended_runs_not_crashed(module.JobManager.has_block_run_job)
    elif module.__name__ == QUEUE_MODULE and early_scheduling() and hasattr(module, "ProcessQueue"):
        if getattr(module, "time", None) is time:
            module.time = WakingTime(time, _pool_address)
        if not getattr(module.ProcessQueue.enqueue, "_magekube", False):
            module.ProcessQueue.enqueue = waking_enqueue(module.ProcessQueue.enqueue)


class _Finder:
    """A meta path finder that patches Mage's k8s executor modules right
    after they load (ExecutorFactory imports them lazily)."""

    def find_spec(self, name, path=None, target=None):
        if name not in MODULES:
            return None
        import importlib.machinery

        for finder in __import__("sys").meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _PatchingLoader(spec.loader)
                return spec
        return None


class _PatchingLoader:
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        patch_module(module)


# The oldest and newest mage-ai the python tier runs the trigger in
# (hack/lib.sh: MAGE_AI_RANGE and MAGE_AI_VERSION).
MAGE_RANGE = ("0.9.72", "0.9.80")


def mage_version():
    """The installed mage-ai's version, None where there is none."""
    try:
        import importlib.metadata

        return importlib.metadata.version("mage-ai")
    except Exception:
        return None


def _release(version):
    parts = []
    for p in version.split(".")[:3]:
        digits = re.match(r"\d+", p)
        parts.append(int(digits.group()) if digits else 0)
    return tuple(parts)


def range_note(version):
    """None inside MAGE_RANGE (or with no Mage); outside it, the one line
    install logs: the range, and what the trigger does there."""
    if not version:
        return None
    oldest, newest = MAGE_RANGE
    if _release(oldest) <= _release(version) <= _release(newest):
        return None
    return ("magekube: mage-ai %s is outside the releases this trigger is tested in (%s to %s); it routes "
            "executor_type k8s runs through the magekube agent all the same. If they fail, run a release in "
            "that range, or set MAGEKUBE_DISABLE=1 to give them back to Mage's own executor (docs/operations.md: "
            "rollback)." % (version, oldest, newest))


def install():
    """Patch Mage's k8s executors now if loaded, else when they load."""
    import sys

    if os.environ.get("MAGEKUBE_DISABLE") == "1":
        return
    note = range_note(mage_version())
    if note and not os.environ.get("MAGEKUBE_RANGE_NOTED"):
        os.environ["MAGEKUBE_RANGE_NOTED"] = "1"  # once, not in every process Mage starts
        print(note, file=sys.stderr)
    for name in MODULES:
        if name in sys.modules:
            patch_module(sys.modules[name])
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


_closing = None  # the file descriptors _close_later's thread closes
_closing_lock = threading.Lock()


def _close_later(fd):
    """Close an inotify descriptor off the caller's path: the kernel waits
    for an RCU grace period on that close (16 ms measured here), which
    wait() would otherwise add to every block. One daemon thread per
    process closes them in order; a process that exits first closes them
    by exiting."""
    global _closing
    with _closing_lock:
        if _closing is None:
            import queue

            _closing = queue.SimpleQueue()
            threading.Thread(target=_closer, args=(_closing,), name="magekube-inotify-close", daemon=True).start()
    _closing.put(fd)


def _closer(fds):
    while True:
        os.close(fds.get())


class _Watch:
    """Wakes wait() as soon as the agent replaces the run's status.json:
    inotify on runs/ (the run's directory appears there when the agent
    claims the request) and on runs/<id>/, through libc with ctypes, so the
    trigger stays standard library only. Where inotify cannot be had (not
    Linux, no libc) or cannot see the writer (another node of a network
    file system), wait(interval) is a plain sleep: polling is the fallback,
    never the rule."""

    _MASK = 0x00000080 | 0x00000100 | 0x00000008  # IN_MOVED_TO | IN_CREATE | IN_CLOSE_WRITE

    def __init__(self, runs_dir, rid):
        self.runs_dir, self.run_dir, self.fd, self.watching_run = runs_dir, os.path.join(runs_dir, rid), -1, False

    _libc = None  # loaded once: finding libc runs ldconfig

    @classmethod
    def _load(cls):
        if cls._libc is None:
            try:
                import ctypes
                import ctypes.util

                cls._libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
                cls._libc.inotify_init1
            except (OSError, AttributeError):
                cls._libc = False
        return cls._libc

    def __enter__(self):
        self.libc = self._load()
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC) if self.libc else -1
        if self.fd >= 0:
            self._add(self.runs_dir)
            self._watch_run()
        return self

    def __exit__(self, *exc):
        if self.fd >= 0:
            _close_later(self.fd)

    def _add(self, path):
        return self.libc.inotify_add_watch(self.fd, os.fsencode(path), self._MASK) >= 0

    def _watch_run(self):
        if not self.watching_run and os.path.isdir(self.run_dir):
            self.watching_run = self._add(self.run_dir)

    def wait(self, interval):
        if self.fd < 0:
            time.sleep(interval)
            return
        import select

        # An event wakes this at once; the timeout only covers writes
        # inotify cannot see.
        ready, _, _ = select.select([self.fd], [], [], max(interval, 1.0))
        if ready:
            try:
                while os.read(self.fd, 65536):
                    pass
            except BlockingIOError:
                pass
        self._watch_run()
