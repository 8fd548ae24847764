#!/usr/bin/python3
"""Soak: each sample daemon, natively and under each gonet mode, under load and faults.

For every cell (daemon x mode) the daemon is started on a loopback port and driven for
SOAK_SECONDS by soak_client: threads that connect, exchange checksummed messages and end each
connection at random (clean close, RST, close mid-message, close without reading). Faults are
injected by gonet itself: SERVER_FAULT in the daemon (cells under gonet), CLIENT_FAULT in the
client (preloaded in passthrough mode, in every cell, so each cell sees the same refused
connects). When the load stops the cell checks, and fails on any violation:

  crash      the daemon (or a prefork worker) died during the load
  bytes      a completed exchange was not byte-exact, or a reply never came (client stall)
  answers    the daemon still answers a clean exchange after the load
  fds        the open-fd count of the daemon's process tree comes back to its baseline
  rss        RSS comes back near its baseline (see RSS_SLACK below)
  stats      every GONET_STATS=1 summary (and each prefork worker's live counters) has
             parks == wakes_io + wakes_timeout + wakes_close + wakes_signal + threads_parked
             and invariant_failures == 0
  exit       SIGTERM stops the daemon with status 0

Prints one table row per cell and exits non-zero if any cell failed. Environment:
The real Debian servers (redis-server, python3 -m http.server) follow, in real_servers.py.
SOAK_SECONDS (per cell, default 15), SOAK_CONNS (client threads, default 64), SOAK_CELLS
(comma-separated filters like "echo_threads/threads,prefork", default all), SOAK_SEED.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

import real_servers  # noqa: E402 (same directory)

SERVER_FAULT = "read:ECONNRESET:p=0.001;write:delay=1ms:p=0.01;accept:ECONNABORTED:p=0.01"
CLIENT_FAULT = "connect:ECONNREFUSED:p=0.01"

DAEMONS = [  # name, protocol, extra args
    ("echo_threads", "echo", []),
    ("http_threads", "http", []),
    ("prefork", "echo", ["--workers", "4"]),
]
MODES = {  # name -> environment (None: native, no preload)
    "native": None,
    "threads": {"GONET_MODE": "threads"},
    "threads-netpoller": {"GONET_MODE": "threads", "GONET_THREADS_WAIT": "netpoller"},
    "passthrough": {"GONET_MODE": "passthrough"},
    "fibers": {"GONET_MODE": "fibers"},
}

# Bounds on waiting for an observable state; reaching one is a failure, not a measurement.
START_BOUND_S = 20
SETTLE_BOUND_S = 30
STOP_BOUND_S = 30
# RSS may stay above its baseline by allocator and thread-stack caches that glibc keeps on
# purpose (per-thread malloc arenas, up to 40 MiB of cached stacks); a leak of the load's size
# (thousands of connections x tens of KiB) exceeds this.
RSS_SLACK_KIB = 48 * 1024

STATS_HEADER = re.compile(r"^gonet stats \(pid (\d+), mode (\w+)\):$")
STATS_LINE = re.compile(r"^  (\w+)\s+(-?\d+)$")


def tree_pids(pid):
    """pid and its descendants (prefork workers)."""
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return pids


def fd_count(pids):
    n = 0
    for p in pids:
        try:
            n += len(os.listdir(f"/proc/{p}/fd"))
        except OSError:
            pass
    return n


def rss_kib(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def parse_summaries(text):
    """Every 'gonet stats (pid N, mode M):' block in a daemon's stderr -> list of dicts."""
    blocks, cur = [], None
    for line in text.splitlines():
        m = STATS_HEADER.match(line)
        if m:
            cur = {"pid": int(m.group(1)), "mode": m.group(2)}
            blocks.append(cur)
            continue
        m = STATS_LINE.match(line)
        if cur is not None and m:
            cur[m.group(1)] = int(m.group(2))
        elif cur is not None:
            cur = None
    return blocks


def stats_violations(block, where):
    wakes = sum(block.get(k, 0) for k in
                ("wakes_io", "wakes_timeout", "wakes_close", "wakes_signal"))
    out = []
    if block.get("parks", 0) != wakes + block.get("threads_parked", 0):
        out.append(f"stats({where}): parks={block.get('parks')} != wakes={wakes} + "
                   f"threads_parked={block.get('threads_parked')}")
    if block.get("invariant_failures", 0) != 0:
        out.append(f"stats({where}): invariant_failures={block['invariant_failures']}")
    return out


def wait_until(pred, bound_s):
    end = time.monotonic() + bound_s
    while True:
        if pred():
            return True
        if time.monotonic() > end:
            return False
        time.sleep(0.1)


class Cell:
    def __init__(self, build, daemon, proto, args, mode, env_extra, seconds, conns, seed):
        self.build, self.daemon, self.proto, self.args = build, daemon, proto, args
        self.mode, self.env_extra = mode, env_extra
        self.seconds, self.conns, self.seed = seconds, conns, seed
        self.violations = []
        self.row = {}

    def daemon_env(self):
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("GONET_") or k == "LD_PRELOAD":
                del env[k]
        if self.env_extra is not None:
            env.update(self.env_extra)
            env["LD_PRELOAD"] = os.path.join(self.build, "libgonet.so")
            env["GONET_STATS"] = "1"
            env["GONET_FAULT"] = SERVER_FAULT
            env["GONET_FAULT_SEED"] = str(self.seed)
        return env

    def client_env(self):
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("GONET_"):
                del env[k]
        env.update({"LD_PRELOAD": os.path.join(self.build, "libgonet.so"),
                    "GONET_MODE": "passthrough", "GONET_FAULT": CLIENT_FAULT,
                    "GONET_FAULT_SEED": str(self.seed + 1)})
        return env

    def probe(self):
        env = dict(os.environ)
        env.pop("LD_PRELOAD", None)
        try:
            r = subprocess.run([os.path.join(self.build, "soak_client"), "--port",
                                str(self.port), "--proto", self.proto, "--probe",
                                "--timeout", "10"], env=env, timeout=60,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return r.returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def worker_stats(self, pids):
        """Live counters of prefork workers (they die by SIGTERM and print no summary)."""
        cli = os.path.join(self.build, "gonet")
        if self.env_extra is None or not os.access(cli, os.X_OK):
            return
        for p in pids[1:]:
            r = subprocess.run([cli, "stats", str(p), "--json"], capture_output=True,
                               text=True, timeout=30)
            if r.returncode != 0:
                self.violations.append(f"gonet stats {p}: {r.stderr.strip()[:120]}")
                continue
            counters = json.loads(r.stdout).get("counters", {})
            self.violations += stats_violations(counters, f"worker {p}")
            self.row["parks"] += counters.get("parks", 0)
            self.row["faults"] += counters.get("faults_injected", 0)

    def run(self):
        self.row = {"daemon": self.daemon, "mode": self.mode, "parks": 0, "faults": 0}
        errpath = os.path.join(self.build, f"soak-{self.daemon}-{self.mode}.stderr")
        errf = open(errpath, "w+")
        proc = subprocess.Popen([os.path.join(self.build, self.daemon), "--port", "0"] +
                                self.args, env=self.daemon_env(), stdout=subprocess.PIPE,
                                stderr=errf, text=True, start_new_session=True)
        try:
            self._drive(proc)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        errf.seek(0)
        stderr = errf.read()
        errf.close()
        for needle in ("AddressSanitizer", "invariant broken", "Segmentation", "terminate called"):
            if needle in stderr:
                self.violations.append(f"crash: '{needle}' in {errpath}")
        blocks = parse_summaries(stderr)
        if self.env_extra is not None and not blocks:
            self.violations.append(f"stats: no GONET_STATS summary in {errpath}")
        for b in blocks:
            self.violations += stats_violations(b, f"pid {b['pid']}")
            self.row["parks"] += b.get("parks", 0)
            self.row["faults"] += b.get("faults_injected", 0)
        return not self.violations

    def _drive(self, proc):
        line = ""
        deadline = time.monotonic() + START_BOUND_S
        while time.monotonic() < deadline and not line.startswith("listening on"):
            line = proc.stdout.readline()
            if not line:
                break
        if not line.startswith("listening on"):
            self.violations.append(f"start: no 'listening on' line (status {proc.poll()})")
            return
        self.port = int(line.split()[2])
        if not self.probe():
            self.violations.append("answers: warm-up probe failed")
            return
        pids0 = tree_pids(proc.pid)
        fd0, rss0 = fd_count(pids0), rss_kib(pids0)
        client = subprocess.Popen(
            [os.path.join(self.build, "soak_client"), "--port", str(self.port), "--proto",
             self.proto, "--seconds", str(self.seconds), "--conns", str(self.conns),
             "--seed", str(self.seed)], env=self.client_env(), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        fd_peak, rss_peak = fd0, rss0
        hard_end = time.monotonic() + self.seconds + 120
        while client.poll() is None and time.monotonic() < hard_end:
            pids = tree_pids(proc.pid)
            fd_peak, rss_peak = max(fd_peak, fd_count(pids)), max(rss_peak, rss_kib(pids))
            time.sleep(0.5)
        if client.poll() is None:
            client.kill()
            self.violations.append("bytes: load client did not finish (stall)")
        out, err = client.communicate()
        try:
            load = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            load = {}
            self.violations.append(f"client: no summary (status {client.returncode}) "
                                   f"{err.strip()[:200]}")
        for k in ("mismatches", "stalls", "unexpected"):
            if load.get(k, 0):
                self.violations.append(f"bytes: client {k}={load[k]} "
                                       f"{load.get('unexpected_by_what', '')}")
        self.row.update(connects=load.get("connects", 0), exchanges=load.get("exchanges", 0),
                        mib=load.get("bytes", 0) / 2**20,
                        cut=load.get("cut_eof", 0) + load.get("cut_reset", 0) +
                        load.get("cut_pipe", 0), refused=load.get("refused", 0))
        if proc.poll() is not None:
            self.violations.append(f"crash: daemon exited during load (status {proc.poll()})")
            return
        pids1 = tree_pids(proc.pid)
        if len(pids1) != len(pids0) or set(pids1) != set(pids0):
            self.violations.append(f"crash: process tree changed {sorted(pids0)} -> "
                                   f"{sorted(pids1)}")
        if not wait_until(lambda: fd_count(tree_pids(proc.pid)) <= fd0, SETTLE_BOUND_S):
            self.violations.append(f"fds: {fd_count(tree_pids(proc.pid))} open after the load, "
                                   f"baseline {fd0}")
        fd1 = fd_count(tree_pids(proc.pid))
        rss1 = rss_kib(tree_pids(proc.pid))
        if rss1 > rss0 + RSS_SLACK_KIB:
            self.violations.append(f"rss: {rss1} KiB after the load, baseline {rss0} KiB")
        self.row.update(fd=f"{fd0}/{fd_peak}/{fd1}",
                        rss=f"{rss0 // 1024}/{rss_peak // 1024}/{rss1 // 1024}")
        if not self.probe():
            self.violations.append("answers: daemon does not answer after the load")
        self.worker_stats(tree_pids(proc.pid))
        proc.send_signal(signal.SIGTERM)
        try:
            status = proc.wait(timeout=STOP_BOUND_S)
            if status != 0:
                self.violations.append(f"exit: status {status} after SIGTERM")
        except subprocess.TimeoutExpired:
            self.violations.append("exit: daemon did not stop on SIGTERM (hang)")


def fibers_work(build):
    """Fibers mode is new: run its cells only if echo_threads answers under it."""
    env = dict(os.environ, LD_PRELOAD=os.path.join(build, "libgonet.so"), GONET_MODE="fibers")
    proc = subprocess.Popen([os.path.join(build, "echo_threads"), "--port", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    try:
        line = proc.stdout.readline()
        if not line.startswith("listening on"):
            return False
        r = subprocess.run([os.path.join(build, "soak_client"), "--port", line.split()[2],
                            "--seconds", "1", "--conns", "4", "--timeout", "10"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        return r.returncode == 0
    except subprocess.TimeoutExpired:
        return False
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
    seconds = int(os.environ.get("SOAK_SECONDS", "15"))
    conns = int(os.environ.get("SOAK_CONNS", "64"))
    seed = int(os.environ.get("SOAK_SEED", "1"))
    filters = [f for f in os.environ.get("SOAK_CELLS", "").split(",") if f]
    modes = dict(MODES)
    skipped = []
    if not fibers_work(build):
        del modes["fibers"]
        skipped.append("fibers (echo_threads does not answer under GONET_MODE=fibers)")
    cells = []
    for daemon, proto, args in DAEMONS:
        for mode, env in modes.items():
            name = f"{daemon}/{mode}"
            if filters and not any(f in name for f in filters):
                continue
            cells.append(Cell(build, daemon, proto, args, mode, env, seconds, conns,
                              seed + len(cells)))
    print(f"soak: {len(cells)} cells x {seconds}s, {conns} client threads; server fault "
          f"'{SERVER_FAULT}', client fault '{CLIENT_FAULT}'", flush=True)
    for s in skipped:
        print(f"soak: skipped {s}", flush=True)
    header = (f"{'daemon':<13} {'mode':<18} {'conns':>7} {'exch':>8} {'MiB':>7} {'cut':>6} "
              f"{'refused':>7} {'fds base/peak/end':>18} {'RSS MiB b/p/e':>14} {'parks':>8} "
              f"{'faults':>7}  result")
    print(header)
    failed = 0
    for cell in cells:
        ok = cell.run()
        r = cell.row
        print(f"{r['daemon']:<13} {r['mode']:<18} {r.get('connects', 0):>7} "
              f"{r.get('exchanges', 0):>8} {r.get('mib', 0):>7.0f} {r.get('cut', 0):>6} "
              f"{r.get('refused', 0):>7} {r.get('fd', '-'):>18} {r.get('rss', '-'):>14} "
              f"{r['parks']:>8} {r['faults']:>7}  {'ok' if ok else 'FAIL'}", flush=True)
        for v in cell.violations:
            print(f"    {v}", flush=True)
        failed += not ok
    print(f"soak: {len(cells) - failed} cells ok, {failed} failed")
    # The real Debian servers (issue 17): tests/soak/real_servers.py.
    failed += real_servers.run_all(build, seconds, seed, filters)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
