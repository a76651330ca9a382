"""How soon the Mage side learns that a run ended: the agent replaces
runs/<id>/status.json (temporary file, rename) with a terminal status, and
the trigger's wait() returns. Measured with inotify (the trigger's way)
and with the polling it falls back to, on this machine's disk. Prints a
table and one JSON line. Standard library only: python3 bench_trigger.py [N]
"""
import json
import os
import random
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import magekube_mage  # noqa: E402


def write_status(root, rid, phase):
    path = os.path.join(root, "runs", rid, "status.json")
    with open(path + ".tmp", "w") as f:
        json.dump({"id": rid, "phase": phase}, f)
    os.replace(path + ".tmp", path)


def one(root, rid):
    os.makedirs(os.path.join(root, "runs", rid))
    write_status(root, rid, "Running")
    returned = {}

    def waiter():
        magekube_mage.wait(rid, root)
        returned["at"] = time.perf_counter()

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(random.uniform(0.005, 0.05))  # the block runs a while
    wrote = time.perf_counter()
    write_status(root, rid, "Succeeded")
    t.join()
    return (returned["at"] - wrote) * 1000


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def measure(n, inotify):
    if not inotify:
        magekube_mage._Watch.__enter__ = lambda self: self  # fd stays -1: the polling fallback
    with tempfile.TemporaryDirectory() as root:
        return [one(root, "run-%d" % i) for i in range(n)]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    watched = measure(n, True)
    polled = measure(max(20, n // 10), False)
    rows = [
        ("trigger notice with inotify, p50 (ms)", percentile(watched, 50)),
        ("trigger notice with inotify, p99 (ms)", percentile(watched, 99)),
        ("trigger notice polling every 200 ms (fallback), p50 (ms)", percentile(polled, 50)),
        ("trigger notice polling, p99 (ms)", percentile(polled, 99)),
    ]
    print("| figure (%d runs with inotify, %d polling) | value |" % (len(watched), len(polled)))
    print("|---|---|")
    for name, v in rows:
        print("| %s | %.1f |" % (name, v))
    print(json.dumps({"trigger_notice_p50_ms": round(percentile(watched, 50), 1),
                      "trigger_notice_p99_ms": round(percentile(watched, 99), 1),
                      "trigger_poll_notice_p99_ms": round(percentile(polled, 99), 1)}))


if __name__ == "__main__":
    main()
