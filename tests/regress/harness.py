"""Process plumbing for the regression suite: modes, daemons, clients, and cleanup.

Every program a scenario starts runs in its own session (its own process group), so that the
daemon, the workers it forks and the children those exec are all killed together, and so that
the suite can check that a stopped daemon left nothing behind. The runner also makes itself a
child subreaper: a grandchild orphaned by a daemon is re-parented to the runner, which reaps it,
instead of to an init that may never do so.
"""

import ctypes
import os
import select
import signal
import subprocess
import tempfile
import time

# Safety nets, not expectations: a healthy run finishes far below them. They exist so that a
# hung program fails its test instead of hanging ctest, whose TIMEOUT would kill only us.
STARTUP_LIMIT_S = 30
CLIENT_LIMIT_S = 60
STOP_LIMIT_S = 30

PR_SET_CHILD_SUBREAPER = 36
SKIP = 77  # ctest's SKIP_RETURN_CODE for this suite


class Failure(Exception):
    """A scenario's expectation was not met."""


def run_check(checks, name, ctx):
    """Runs the check called `name` of `checks` on ctx: prints PASS and returns 0, or prints
    FAIL with the Failure's text and returns 1."""
    try:
        checks[name](ctx)
    except Failure as e:
        print(f"FAIL: {name}: {e}")
        return 1
    print(f"PASS: {name}")
    return 0


def become_subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


class Mode:
    """How programs run: 'native', or under libgonet.so with GONET_MODE=<name>."""

    def __init__(self, name, preload):
        self.name = name
        self.preload = preload

    @property
    def native(self):
        return self.name == "native"

    def env(self, extra=None):
        env = {k: v for k, v in os.environ.items()
               if k != "LD_PRELOAD" and not k.startswith("GONET_")}
        if not self.native:
            env["LD_PRELOAD"] = self.preload
            env["GONET_MODE"] = self.name
        env.update(extra or {})
        return env

    def shell_prefix(self):
        """The environment assignments that reproduce this mode in a shell command line."""
        return "" if self.native else f"LD_PRELOAD={self.preload} GONET_MODE={self.name} "

    def __str__(self):
        return self.name


def _proc_stat(pid):
    """(state, ppid, pgrp) of pid, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[2])


def group_members(pgid):
    """Pids of the live (non-zombie) processes in process group pgid."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        st = _proc_stat(int(entry))
        if st and st[2] == pgid and st[0] != "Z":
            members.append(int(entry))
    return members


def reap_orphans():
    """Reaps zombies re-parented to us (we are their subreaper). Popen children are not
    touched: they are never zombies here, since each is waited for before this runs."""
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _proc_stat(int(entry))
            if st and st[1] == me and st[0] == "Z":
                try:
                    os.waitpid(int(entry), os.WNOHANG)
                except ChildProcessError:
                    pass


def kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def wait_group_empty(pgid, limit_s=STOP_LIMIT_S):
    """Waits until no process of group pgid is alive. Returns the stragglers (empty if none)."""
    deadline = time.monotonic() + limit_s
    while True:
        reap_orphans()
        members = group_members(pgid)
        if not members or time.monotonic() > deadline:
            return members
        time.sleep(0.02)


class Daemon:
    """A sample daemon started under a mode; a context manager that always kills its group.

    The daemon's first stdout line is "listening on PORT"; start() waits for it.
    """

    def __init__(self, build, mode, name, *args):
        self.cmd = [os.path.join(build, name), "--port", "0", *map(str, args)]
        self.mode = mode
        self.name = name
        self.proc = None
        self.port = None
        self.stderr = tempfile.TemporaryFile()

    def __enter__(self):
        self.proc = subprocess.Popen(self.cmd, env=self.mode.env(), stdout=subprocess.PIPE,
                                     stderr=self.stderr, start_new_session=True)
        try:
            return self._await_listening()
        except BaseException:
            # A `with` statement does not call __exit__ when __enter__ raises.
            self.__exit__(None, None, None)
            raise

    def _await_listening(self):
        line = self._read_line(STARTUP_LIMIT_S)
        if not line.startswith("listening on "):
            raise Failure(f"{self.name}: expected 'listening on PORT', got {line!r}; "
                          f"stderr: {self.stderr_text()}")
        self.port = int(line.split()[2])
        if not self.mode.native and not self._maps_preload():
            raise Failure(f"{self.name}: {self.mode.preload} is not mapped into the daemon, "
                          f"so mode {self.mode} would test nothing")
        return self

    def _maps_preload(self):
        real = os.path.realpath(self.mode.preload)
        with open(f"/proc/{self.proc.pid}/maps") as f:
            return any(line.rstrip().endswith(real) for line in f)

    def _read_line(self, limit_s):
        deadline = time.monotonic() + limit_s
        data = b""
        fd = self.proc.stdout.fileno()
        while not data.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise Failure(f"{self.name}: no 'listening on' line within {limit_s}s")
            chunk = os.read(fd, 1)
            if not chunk:
                raise Failure(f"{self.name}: exited before listening (rc={self.proc.wait()}); "
                              f"stderr: {self.stderr_text()}")
            data += chunk
        return data.decode(errors="replace").strip()

    def stderr_text(self):
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace").strip()

    def threads(self):
        """The daemon's thread ids, main thread first."""
        tids = sorted(int(t) for t in os.listdir(f"/proc/{self.proc.pid}/task"))
        tids.remove(self.proc.pid)
        return [self.proc.pid, *tids]

    def stop(self, sig=signal.SIGTERM, via_tid=None):
        """Sends sig to the daemon (not its group): it must exit 0 on its own, leave no
        process of its group alive, and have reported no error on stderr (lines mentioning
        gonet, the runtime's own, are not the daemon's). kill() naming another thread's id
        still signals the whole process, but the kernel prefers to run the handler on that
        thread: via_tid chooses where the handler runs."""
        os.kill(via_tid or self.proc.pid, sig)
        try:
            rc = self.proc.wait(STOP_LIMIT_S)
        except subprocess.TimeoutExpired:
            raise Failure(f"{self.name}: still running {STOP_LIMIT_S}s after {sig.name} "
                          f"(daemon: {self.mode.shell_prefix()}{' '.join(self.cmd)})")
        if rc != 0:
            raise Failure(f"{self.name}: exit status {rc} after {sig.name}, expected 0; "
                          f"stderr: {self.stderr_text()}")
        left = wait_group_empty(self.proc.pid)
        if left:
            raise Failure(f"{self.name}: processes left after it exited: {left}")
        complaints = [line for line in self.stderr_text().splitlines()
                      if "gonet" not in line.lower()]
        if complaints:
            raise Failure(f"{self.name}: reported errors on stderr: {complaints}")

    def __exit__(self, *exc):
        kill_group(self.proc.pid)
        try:
            self.proc.wait(STOP_LIMIT_S)
        finally:
            self.proc.stdout.close()
            wait_group_empty(self.proc.pid)
            self.stderr.close()
        return False


def run_program(cmd, env, limit_s=CLIENT_LIMIT_S):
    """Runs cmd to completion in its own group. Returns (rc, stdout, stderr) as text."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=limit_s)
    except subprocess.TimeoutExpired:
        raise Failure(f"{os.path.basename(cmd[0])} still running after {limit_s}s: {cmd}")
    finally:
        kill_group(proc.pid)
        proc.wait()
        wait_group_empty(proc.pid)
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")
