"""The official Python client as a contender of `cargo bench --bench ggipc`.

awsiotsdk's GreengrassCoreIPCClientV2 (awscrt underneath), installed from PyPI into
target/ggipc-bench/venv by benches/tools/prepare.sh. Blocking calls from plain threads
(the V2 client's synchronous methods). Connects with
AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT / SVCUID and speaks the line protocol
described in benches/peers/protocol.rs:

  -> ready awsiotsdk VERSION
  <- rtt N TOPIC                -> rtt P50_US P99_US
  <- pipelined T SECS TOPIC     -> pipelined OPS ELAPSED_S
  <- events P TOTAL TOPIC       -> events DELIVERED ELAPSED_S DROPPED
  <- quit
"""

import os
import sys
import threading
import time

from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc.model import BinaryMessage, PublishMessage

EVENTS_TIMEOUT_S = 60.0


def say(*words):
    print(*words, flush=True)


def rtt(client, n, topic, message):
    lat = []
    for i in range(n + n // 10):
        t = time.perf_counter_ns()
        client.publish_to_topic(topic=topic, publish_message=message)
        if i >= n // 10:
            lat.append(time.perf_counter_ns() - t)
    lat.sort()

    def pct(p):
        return lat[min(len(lat) - 1, round((len(lat) - 1) * p))] / 1000.0

    return "rtt %.3f %.3f" % (pct(0.5), pct(0.99))


def pipelined(client, threads, secs, topic, message):
    stop = threading.Event()
    counts = [0] * threads
    errors = []

    def worker(k):
        try:
            while not stop.is_set():
                client.publish_to_topic(topic=topic, publish_message=message)
                counts[k] += 1
        except Exception as e:  # reported as an error line
            errors.append(repr(e))

    workers = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    time.sleep(secs)
    stop.set()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise RuntimeError(errors[0])
    return "pipelined %d %.6f" % (sum(counts), elapsed)


def events(client, publishers, total, topic, message):
    per = total // publishers
    total = per * publishers
    lock = threading.Lock()
    done = threading.Event()
    seen = [0]
    end = [None]

    def on_event(event):
        with lock:
            seen[0] += 1
            if seen[0] == total:
                end[0] = time.perf_counter()
                done.set()

    _, operation = client.subscribe_to_topic(topic=topic, on_stream_event=on_event)
    errors = []

    def publisher():
        try:
            for _ in range(per):
                client.publish_to_topic(topic=topic, publish_message=message)
        except Exception as e:  # reported as an error line
            errors.append(repr(e))

    workers = [threading.Thread(target=publisher) for _ in range(publishers)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise RuntimeError(errors[0])
    done.wait(timeout=EVENTS_TIMEOUT_S)
    with lock:
        count = seen[0]
        finish = end[0] if end[0] is not None else time.perf_counter()
    operation.close()
    return "events %d %.6f 0" % (count, finish - start)


def main():
    payload = b"\x5a" * int(os.environ.get("BENCH_PAYLOAD", "128"))
    message = PublishMessage(binary_message=BinaryMessage(message=payload))
    client = GreengrassCoreIPCClientV2()
    try:
        from importlib.metadata import version

        say("ready", "awsiotsdk", version("awsiotsdk"))
    except Exception:  # the version is a label only
        say("ready")
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "quit":
            break
        try:
            if words[0] == "rtt":
                say(rtt(client, int(words[1]), words[2], message))
            elif words[0] == "pipelined":
                say(pipelined(client, int(words[1]), float(words[2]), words[3], message))
            elif words[0] == "events":
                say(events(client, max(1, int(words[1])), int(words[2]), words[3], message))
            else:
                say("error unknown command %r" % line.strip())
        except Exception as e:  # one failed command does not end the run
            say("error", repr(e).replace("\n", " "))
    client.close()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # reported to the harness as a "not measured" cell
        say("error", repr(e).replace("\n", " "))
        sys.exit(1)
