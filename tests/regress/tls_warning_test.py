#!/usr/bin/python3
"""Start-up TLS warning in fibers mode (issue 5): real programs under the preloaded libgonet.so.

In fibers mode the program's threads are fibers on a few worker threads, so a __thread /
thread_local variable has one copy per worker, shared by its fibers. gonet says so once at
start-up, naming each application object that declares TLS (core/fibers/tls_scan.h). These checks run
real processes and read their stderr:

    tls_warning_test.py CHECK --build DIR --probe PATH

--probe is tests/regress/tls_probe.c built by CMake. Registered with ctest in
tests/regress/CMakeLists.txt as regress.tls.CHECK. Exit 0: passed; 1: failed; 77: skipped.
"""

import argparse
import os
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SKIP, Failure, run_check  # noqa: E402

LIMIT_S = 30  # every program here exits at once; this only bounds a hang
WARNING = "gonet: fibers mode: "


def tls_bytes(path):
    """p_memsz of the PT_TLS program header of an ELF64 little-endian file, or 0 if none."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
            raise Failure(f"{path}: not an ELF64 little-endian file")
        phoff, = struct.unpack_from("<Q", head, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    for i in range(phnum):
        p_type, = struct.unpack_from("<I", table, i * phentsize)
        if p_type == 7:  # PT_TLS
            p_memsz, = struct.unpack_from("<Q", table, i * phentsize + 0x28)
            return p_memsz
    return 0


class Ctx:
    def __init__(self, args):
        self.build = os.path.abspath(args.build)
        self.lib = os.path.join(self.build, "libgonet.so")
        self.gonet = os.path.join(self.build, "gonet")
        self.probe = os.path.abspath(args.probe)

    def env(self, mode=None, **extra):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("GONET_") and k != "LD_PRELOAD"}
        if mode is not None:
            env["LD_PRELOAD"] = self.lib
            env["GONET_MODE"] = mode
        env.update(extra)
        return env

    def run(self, argv, env):
        r = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=LIMIT_S)
        if r.returncode != 0:
            raise Failure(f"{argv} exited {r.returncode}; stderr: {r.stderr!r}")
        return r


def warnings(result):
    return [line for line in result.stderr.splitlines() if line.startswith(WARNING)]


def expect_warnings(result, count, what):
    found = warnings(result)
    if len(found) != count:
        raise Failure(f"{what}: expected {count} TLS warning line(s), got {len(found)}:\n"
                      f"  stderr: {result.stderr!r}")
    return found


def check_program_with_thread_local_is_named(ctx):
    """The warning names the program as it was started, with the size of its TLS segment, and
    says what it means and how to silence it; the runtimes it loads (libc) are not named."""
    size = tls_bytes(ctx.probe)
    if size == 0:
        raise Failure(f"{ctx.probe} has no PT_TLS: the probe is built wrong")
    r = ctx.run([ctx.probe], ctx.env("fibers"))
    line, = expect_warnings(r, 1, "tls_probe in fibers mode")
    want = f"{WARNING}{ctx.probe} declares {size} bytes of thread-local storage"
    if not line.startswith(want):
        raise Failure(f"expected the line to start with {want!r}, got {line!r}")
    for needle in ("one copy per worker thread", "Thread-local storage in fibers mode",
                   "GONET_QUIET_TLS=1"):
        if needle not in line:
            raise Failure(f"{needle!r} missing from {line!r}")
    if r.stdout != "ok\n":
        raise Failure(f"the program's own output changed: {r.stdout!r}")


def check_programs_without_application_tls_are_not_warned(ctx):
    """/bin/true and python3 have TLS only in libc (and python's own libraries have none), so
    nothing is printed: the warning is not noise for every program."""
    for argv in (["/bin/true"], ["/usr/bin/python3", "-c", "pass"]):
        main = os.path.realpath(argv[0])
        if tls_bytes(main) != 0:
            raise Failure(f"{main} declares TLS: pick another program for this check")
        r = ctx.run(argv, ctx.env("fibers"))
        expect_warnings(r, 0, f"{argv} in fibers mode")
        if r.stderr:
            raise Failure(f"{argv}: unexpected stderr {r.stderr!r}")


def check_quiet_tls_silences_the_warning(ctx):
    """GONET_QUIET_TLS=1 silences it, by hand or through `gonet run`; GONET_QUIET_TLS=0 does
    not."""
    expect_warnings(ctx.run([ctx.probe], ctx.env("fibers", GONET_QUIET_TLS="1")), 0,
                    "GONET_QUIET_TLS=1")
    expect_warnings(ctx.run([ctx.probe], ctx.env("fibers", GONET_QUIET_TLS="0")), 1,
                    "GONET_QUIET_TLS=0")
    launcher = [ctx.gonet, "run", "--lib", ctx.lib, "--mode", "fibers", "--", ctx.probe]
    expect_warnings(ctx.run(launcher, ctx.env()), 1, "gonet run --mode fibers")
    expect_warnings(ctx.run(launcher, ctx.env(GONET_QUIET_TLS="1")), 0,
                    "GONET_QUIET_TLS=1 gonet run --mode fibers")


def check_other_modes_never_warn(ctx):
    """Threads and passthrough modes give every thread its own TLS: nothing to warn about."""
    for mode in ("threads", "passthrough"):
        r = ctx.run([ctx.probe], ctx.env(mode))
        expect_warnings(r, 0, f"tls_probe in {mode} mode")
        if r.stderr:
            raise Failure(f"{mode} mode: unexpected stderr {r.stderr!r}")


def check_fork_warns_once_exec_warns_again(ctx):
    """A forked child is the same process image: it does not repeat the warning. A program
    started by exec initialises gonet again and warns for itself."""
    r = ctx.run([ctx.probe, "fork"], ctx.env("fibers"))
    expect_warnings(r, 1, "fork without exec")
    r = ctx.run([ctx.probe, "exec"], ctx.env("fibers"))
    found = expect_warnings(r, 2, "fork, then exec")
    if found[0] != found[1]:
        raise Failure(f"the exec'd program's warning differs: {found!r}")


def check_thread_local_is_shared_by_fibers_of_one_worker(ctx):
    """What the warning is about, demonstrated: with one worker, a thread that parks in recv
    sees the value another thread stored in its own __thread copy meanwhile. Natively and in
    threads mode each thread keeps its own copy."""
    line = "thread-local value after park: %d\n"
    for mode, extra, want in ((None, {}, 1), ("threads", {}, 1),
                              ("fibers", {"GONET_WORKERS": "1", "GONET_QUIET_TLS": "1"}, 2)):
        r = ctx.run([ctx.probe, "share"], ctx.env(mode, **extra))
        if r.stdout != line % want:
            raise Failure(f"mode {mode or 'native'}: expected {line % want!r}, got {r.stdout!r}")


CHECKS = {name[len("check_"):]: fn for name, fn in globals().items()
          if name.startswith("check_")}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("check", choices=sorted(CHECKS))
    ap.add_argument("--build", required=True)
    ap.add_argument("--probe", required=True)
    args = ap.parse_args()
    ctx = Ctx(args)
    if not os.path.exists(ctx.lib):
        print(f"SKIP: {ctx.lib} is not built")
        return SKIP
    if not os.access(ctx.probe, os.X_OK):
        print(f"FAIL: {ctx.probe} is not built")
        return 1
    return run_check(CHECKS, args.check, ctx)


if __name__ == "__main__":
    sys.exit(main())
