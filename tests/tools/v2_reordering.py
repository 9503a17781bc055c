"""How the official Python V2 client orders one subscription's events (issue 14, item 4).

GreengrassCoreIPCClientV2 (awsiotsdk) runs `on_stream_event` callbacks on an executor: by
default a `concurrent.futures.ThreadPoolExecutor()` (several workers, an unbounded queue),
one `executor.submit` per event (awsiot/greengrasscoreipc/clientv2.py in awsiotsdk 1.31.0).
So two events of the same subscription can run concurrently and finish out of order.

This subscribes with that client, has `examples/publish --count N` (ggipc, one connection,
one publish after the other) publish N numbered messages, and counts the adjacent pairs the
callbacks saw out of order. It prints the figure; 0 is a valid result (the executor's
scheduling varies), an error is not.

    python tests/tools/v2_reordering.py PUBLISH_EXAMPLE [N [WORK_MS]]

Each callback records its event's number on entry, works for WORK_MS milliseconds
(`time.sleep`, default 1: a handler that writes a file or a register), and records it again
when done (where its effect happens). Both orders are counted.

with AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT and SVCUID set (one component
allowed to publish and subscribe; `tests/tools/v2_reordering.sh` starts the emulator).
"""
import subprocess
import sys
import threading
import time

import awsiot
from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2

TOPIC = "ggipc/reordering"


def main() -> int:
    publish = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
    work = float(sys.argv[3]) / 1000 if len(sys.argv) > 3 else 0.001
    seen = []
    finished = []
    lock = threading.Lock()
    done = threading.Event()
    errors = []

    def on_event(event):
        try:
            seq = event.json_message.message["seq"]
        except Exception as e:  # a malformed event is an error, not a figure
            errors.append(repr(e))
            done.set()
            return
        with lock:
            seen.append(seq)
        if work > 0:
            time.sleep(work)
        with lock:
            finished.append(seq)
            if len(finished) == n:
                done.set()

    def on_error(e):
        errors.append(repr(e))
        done.set()
        return True

    ipc = GreengrassCoreIPCClientV2()
    _, operation = ipc.subscribe_to_topic(topic=TOPIC, on_stream_event=on_event,
                                          on_stream_error=on_error)
    started = time.monotonic()
    subprocess.run([publish, TOPIC, "x", "--count", str(n)], check=True, timeout=300)
    if not done.wait(timeout=120):
        errors.append(f"only {len(seen)} of {n} events within 120 s of the last publish")
    elapsed = time.monotonic() - started
    operation.close()
    ipc.close()
    if errors:
        print("not ok - " + "; ".join(errors))
        return 1
    with lock:
        entered, done_order = list(seen), list(finished)
    for events in (entered, done_order):
        if sorted(events) != list(range(n)):
            print(f"not ok - events lost or duplicated: {len(events)} received, "
                  f"{len(set(events))} distinct, of {n}")
            return 1

    def inversions(events):
        return sum(1 for a, b in zip(events, events[1:]) if b < a)
    version = getattr(awsiot, "__version__", None)
    if version is None:
        from importlib.metadata import version as v
        version = v("awsiotsdk")
    print(f"ok - awsiotsdk {version} GreengrassCoreIPCClientV2, one subscription, "
          f"{n} events, {work * 1000:g} ms of work per callback: adjacent pairs out of order "
          f"{inversions(entered)} on entry, {inversions(done_order)} on completion "
          f"({elapsed:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
