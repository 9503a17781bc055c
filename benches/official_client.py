"""The official client's side of `cargo bench --bench ggipc`.

Runs awsiotsdk's GreengrassCoreIPCClientV2 against the emulator the harness started
(socket path and token in AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT / SVCUID),
the same scenarios as ggipc: publish_to_topic round trips with a 128-byte binary message,
then event delivery to 1 and 4 subscriptions whose handlers count events.

Protocol on stdout/stdin, one line each:
  -> rtt <p50_us> <p99_us>
  <- subscribe <n>       (n subscriptions on BENCH_TOPIC/0 .. BENCH_TOPIC/n-1)
  -> ready               (the harness then publishes BENCH_EVENTS events in all)
  -> done <count> [timeout]
  <- quit
"""

import os
import sys
import threading
import time

from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc.model import BinaryMessage, PublishMessage


def say(*words):
    print(*words, flush=True)


def main():
    topic = os.environ["BENCH_TOPIC"]
    payload = b"\x5a" * int(os.environ.get("BENCH_PAYLOAD", "128"))
    rtt_n = int(os.environ.get("BENCH_RTT_N", "5000"))
    events = int(os.environ.get("BENCH_EVENTS", "100000"))
    client = GreengrassCoreIPCClientV2()

    message = PublishMessage(binary_message=BinaryMessage(message=payload))
    lat = []
    for i in range(rtt_n + rtt_n // 10):
        t = time.perf_counter_ns()
        client.publish_to_topic(topic=topic, publish_message=message)
        if i >= rtt_n // 10:
            lat.append(time.perf_counter_ns() - t)
    lat.sort()

    def pct(p):
        return lat[min(len(lat) - 1, round((len(lat) - 1) * p))] / 1000.0

    say("rtt", "%.3f" % pct(0.5), "%.3f" % pct(0.99))

    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        if words[0] != "subscribe":
            continue
        subs = int(words[1])
        lock = threading.Lock()
        done = threading.Event()
        seen = [0]

        def on_event(event):
            with lock:
                seen[0] += 1
                if seen[0] == events:
                    done.set()

        ops = []
        for i in range(subs):
            _, op = client.subscribe_to_topic(
                topic="%s/%d" % (topic, i), on_stream_event=on_event
            )
            ops.append(op)
        say("ready")
        finished = done.wait(timeout=300)
        with lock:
            count = seen[0]
        say("done", count, "" if finished else "timeout")
        for op in ops:
            op.close()
    client.close()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # reported to the harness as a "not measured" row
        say("error", repr(e).replace("\n", " "))
        sys.exit(1)
