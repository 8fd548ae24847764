#!/usr/bin/python3
"""Fibers mode spares the worker in message-queue and semaphore waits (issue 13): the conformance
scenario ipc_queues_block_like_threads, run on one worker with GONET_STATS=1, makes its six
blocking waits (msgrcv twice, semop, mq_receive, mq_send on a full queue, and msgrcv interrupted
by signals) on offload helpers while its fibers park, so the sysmon never has to hand the worker
to another OS thread. A wait that held the worker in the kernel for its 50-100 ms would show as a
handoff (`fiber_handoffs`) and no offloaded call.

    ipc_waits_test.py --build DIR     exit 0 pass, 1 fail, 77 skip
"""

import argparse
import os
import re
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    lib = os.path.join(args.build, "libgonet.so")
    probe = os.path.join(args.build, "conformance", "conf_ipc_queues_block_like_threads")
    if not os.path.exists(lib) or not os.path.exists(probe):
        print(f"SKIP: {lib} or {probe} is not built")
        return 77
    env = {k: v for k, v in os.environ.items() if not k.startswith("GONET_")}
    env.update(LD_PRELOAD=lib, GONET_MODE="fibers", GONET_WORKERS="1", GONET_STATS="1",
               GONET_QUIET_TLS="1")
    r = subprocess.run([probe], env=env, capture_output=True, text=True, timeout=60)
    stats = dict((m.group(1), int(m.group(2)))
                 for m in re.finditer(r"^\s+(\w+)\s+(-?\d+)$", r.stderr, re.M))
    offloaded, handoffs = stats.get("offloaded_calls", -1), stats.get("fiber_handoffs", -1)
    print(f"exit {r.returncode}; offloaded_calls {offloaded}; fiber_handoffs {handoffs}")
    if r.returncode != 0 or offloaded < 6 or handoffs != 0:
        print(f"FAIL: expected exit 0, at least 6 offloaded calls and no handoff\n{r.stderr}")
        return 1
    print("PASS: ipc_waits_spare_the_worker")
    return 0


if __name__ == "__main__":
    sys.exit(main())
