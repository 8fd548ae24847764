#!/usr/bin/python3
"""Thread-local storage in fibers mode (issues 5, 14): real programs under the preloaded
libgonet.so.

In fibers mode the program's threads are fibers on a few worker threads; gonet gives each fiber
its own copy of the program's __thread / thread_local variables (core/fibers/fiber_tls.h). What
stays shared is named on stderr, one line per object: a library dlopen'ed along its caller's own
search path (a name with $ORIGIN, or by name from a library with an RPATH or RUNPATH of its own),
or every application object when the operator chose GONET_FIBER_TLS=shared. These checks run real
processes and read their stderr:

    tls_warning_test.py CHECK --build DIR --probe PATH --runpath-probe PATH --tls-lib PATH
                              --loader PATH --runpath-loader PATH

--probe is tests/regress/tls_probe.c built by CMake, --runpath-probe the same program linked with
a RUNPATH naming the directory of --tls-lib, a shared library with TLS
(tests/conformance/thread_local_lib.cc), --loader a library beside it that dlopens for the probe
(tls_loader.c), --runpath-loader the same with a RUNPATH of its own. Registered with ctest in
tests/regress/CMakeLists.txt as regress.tls.CHECK. Exit 0: passed; 1: failed; 77: skipped.
"""

import argparse
import os
import shutil
import struct
import subprocess
import sys
import tempfile

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
        self.runpath_probe = os.path.abspath(args.runpath_probe)
        self.tls_lib = os.path.abspath(args.tls_lib)
        self.loader = os.path.abspath(args.loader)
        self.runpath_loader = os.path.abspath(args.runpath_loader)

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


SHARED = {"GONET_FIBER_TLS": "shared"}


def check_program_with_thread_local_is_not_named(ctx):
    """The program's TLS is per fiber: nothing to warn about."""
    if tls_bytes(ctx.probe) == 0:
        raise Failure(f"{ctx.probe} has no PT_TLS: the probe is built wrong")
    r = ctx.run([ctx.probe], ctx.env("fibers"))
    expect_warnings(r, 0, "tls_probe in fibers mode")
    if r.stderr or r.stdout != "ok\n":
        raise Failure(f"unexpected output: stdout {r.stdout!r}, stderr {r.stderr!r}")


def check_shared_tls_names_the_program(ctx):
    """GONET_FIBER_TLS=shared keeps one copy per worker: the warning names the program as it was
    started, with the size of its TLS segment, and says what it means and how to silence it; the
    runtimes it loads (libc) are not named."""
    size = tls_bytes(ctx.probe)
    if size == 0:
        raise Failure(f"{ctx.probe} has no PT_TLS: the probe is built wrong")
    r = ctx.run([ctx.probe], ctx.env("fibers", **SHARED))
    line, = expect_warnings(r, 1, "tls_probe in fibers mode, GONET_FIBER_TLS=shared")
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


RETURNED = "tls_probe: dlopen returned"


def expect_named(line, name, size):
    for needle in (f"{name} declares {size} bytes", "dlopen'ed along its caller's own search path",
                   "one copy per worker thread", "GONET_QUIET_TLS=1"):
        if needle not in line:
            raise Failure(f"{needle!r} missing from {line!r}")


LIBRARY_LINE = "library thread-local value after park: %d\n"
ONE_WORKER = {"GONET_WORKERS": "1"}


def expect_library_tls_per_thread(ctx, probe, lib, **extra):
    """probe dlopens lib, and a thread parked in recv keeps its own value of the library's
    thread-local while another stores into its copy: natively, in threads mode, and in fibers mode
    on one worker; with GONET_FIBER_TLS=shared the library's copy is one per worker (the check can
    fail)."""
    quiet_shared = dict(ONE_WORKER, GONET_QUIET_TLS="1", **SHARED)
    for mode, more, want in ((None, {}, 1), ("threads", {}, 1), ("fibers", ONE_WORKER, 1),
                             ("fibers", quiet_shared, 2)):
        r = ctx.run([probe, "dlopen-share", lib], ctx.env(mode, **extra, **more))
        if r.stdout != LIBRARY_LINE % want:
            raise Failure(f"{lib}, mode {mode or 'native'} {more}: expected "
                          f"{LIBRARY_LINE % want!r}, got {r.stdout!r} (stderr {r.stderr!r})")
        if mode == "fibers" and want == 1:
            expect_warnings(r, 0, f"{lib} in fibers mode")


def check_library_dlopened_by_name_is_followed(ctx):
    """A library dlopen'ed by bare name from a program whose search path glibc reports as gonet's
    own (no RPATH or RUNPATH; LD_LIBRARY_PATH for both) is loaded by gonet's own call, which finds
    the same file: it is followed, its TLS is per fiber, and nothing is printed. The same for the
    library dlopen'ed by path."""
    if tls_bytes(ctx.tls_lib) == 0:
        raise Failure(f"{ctx.tls_lib} has no PT_TLS")
    libdir, name = os.path.split(ctx.tls_lib)
    r = ctx.run([ctx.probe, "dlopen-only", name], ctx.env("fibers", LD_LIBRARY_PATH=libdir))
    expect_warnings(r, 0, "dlopen by name, no thread after it")
    r = ctx.run([ctx.probe, "dlopen", name], ctx.env("fibers", LD_LIBRARY_PATH=libdir))
    expect_warnings(r, 0, "dlopen by name, then a thread")
    if r.stderr != RETURNED + "\n" or r.stdout != "ok\n":
        raise Failure(f"dlopen by name: stdout {r.stdout!r}, stderr {r.stderr!r}")
    expect_library_tls_per_thread(ctx, ctx.probe, name, LD_LIBRARY_PATH=libdir)
    r = ctx.run([ctx.probe, "dlopen", ctx.tls_lib], ctx.env("fibers"))
    expect_warnings(r, 0, "dlopen by path")
    if r.stderr != RETURNED + "\n" or r.stdout != "ok\n":
        raise Failure(f"dlopen by path: stdout {r.stdout!r}, stderr {r.stderr!r}")
    expect_library_tls_per_thread(ctx, ctx.probe, ctx.tls_lib)


def check_library_dlopened_by_name_along_the_programs_runpath_is_followed(ctx):
    """A program with a RUNPATH of its own dlopens the library by name, found only along that
    RUNPATH (no LD_LIBRARY_PATH): gonet searches the program's directories as glibc does, loads
    the file it finds by path, and follows it: per fiber, nothing printed."""
    name = os.path.basename(ctx.tls_lib)
    for mode in (None, "fibers"):
        r = ctx.run([ctx.runpath_probe, "dlopen", name], ctx.env(mode))
        if r.stdout != "ok\n" or r.stderr != RETURNED + "\n":
            raise Failure(f"mode {mode or 'native'}: stdout {r.stdout!r}, stderr {r.stderr!r}")
    expect_library_tls_per_thread(ctx, ctx.runpath_probe, name)


def check_library_dlopened_with_the_programs_origin_is_followed(ctx):
    """A name with $ORIGIN from the program means the program's directory: gonet expands it as
    glibc does for the program and loads that path: followed, per fiber, nothing printed."""
    rel = os.path.relpath(ctx.tls_lib, os.path.dirname(os.path.realpath(ctx.probe)))
    for origin in ("$ORIGIN/", "${ORIGIN}/"):
        for mode in (None, "fibers"):
            r = ctx.run([ctx.probe, "dlopen", origin + rel], ctx.env(mode))
            if r.stdout != "ok\n" or r.stderr != RETURNED + "\n":
                raise Failure(f"{origin} mode {mode or 'native'}: stdout {r.stdout!r}, "
                              f"stderr {r.stderr!r}")
    expect_library_tls_per_thread(ctx, ctx.probe, "$ORIGIN/" + rel)


def expect_named_once(r, name, size, before_return, what):
    line, = expect_warnings(r, 1, what)
    expect_named(line, name, size)
    lines = r.stderr.splitlines()
    if (lines.index(line) < lines.index(RETURNED)) != before_return:
        when = "before dlopen returns" if before_return else "at pthread_create, after dlopen"
        raise Failure(f"{what}: expected the line {when}: {r.stderr!r}")


def check_library_dlopened_with_another_librarys_origin_is_named(ctx):
    """A library (not the program) dlopens with $ORIGIN, its own directory: gonet leaves the call
    to glibc with that library as the caller (the load succeeds as natively) and cannot follow
    what it loads, so the library's TLS stays one copy per worker. gonet knows which file that
    is, so it names it before glibc loads it, once (not again at the next pthread_create)."""
    size = tls_bytes(ctx.tls_lib)
    name = os.path.basename(ctx.tls_lib)
    if os.path.dirname(ctx.loader) != os.path.dirname(ctx.tls_lib):
        raise Failure(f"{ctx.loader} must sit beside {ctx.tls_lib}: the build is wrong")
    for how in ("dlopen", "dlopen-only"):
        argv = [ctx.probe, "dlopen-via-lib", ctx.loader, "$ORIGIN/" + name]
        if how == "dlopen-only":
            argv.append("no-thread")
        for mode in (None, "fibers"):
            r = ctx.run(argv, ctx.env(mode))
            if r.stdout != "ok\n":
                raise Failure(f"{how}, mode {mode or 'native'}: stdout {r.stdout!r}, "
                              f"stderr {r.stderr!r}")
        expect_named_once(r, name, size, True, f"{how} with another library's $ORIGIN")


def check_library_dlopened_by_a_library_with_its_own_runpath_is_named(ctx):
    """A library with a RUNPATH of its own dlopens a bare name: only glibc can search for it. When
    the file is in a directory gonet can look in as glibc does (here LD_LIBRARY_PATH, searched
    before that RUNPATH and ld.so.cache), gonet names it before the load; when that directory has
    hardware-capability subdirectories (glibc chooses among them by CPU), gonet cannot tell and
    names it at the next pthread_create."""
    size = tls_bytes(ctx.tls_lib)
    name = os.path.basename(ctx.tls_lib)
    with tempfile.TemporaryDirectory() as libdir:
        shutil.copy(ctx.tls_lib, libdir)
        argv = [ctx.probe, "dlopen-via-lib", ctx.runpath_loader, name]
        for before_return in (True, False):
            if not before_return:
                os.mkdir(os.path.join(libdir, "glibc-hwcaps"))
            for mode in (None, "fibers"):
                r = ctx.run(argv, ctx.env(mode, LD_LIBRARY_PATH=libdir))
                if r.stdout != "ok\n":
                    raise Failure(f"mode {mode or 'native'}: stdout {r.stdout!r}, "
                                  f"stderr {r.stderr!r}")
            expect_named_once(r, name, size, before_return,
                              "dlopen by a library with a RUNPATH"
                              + ("" if before_return else ", capability subdirectory"))


def check_quiet_tls_silences_the_warning(ctx):
    """GONET_QUIET_TLS=1 silences it, by hand or through `gonet run`; GONET_QUIET_TLS=0 does
    not."""
    expect_warnings(ctx.run([ctx.probe], ctx.env("fibers", GONET_QUIET_TLS="1", **SHARED)), 0,
                    "GONET_QUIET_TLS=1")
    expect_warnings(ctx.run([ctx.probe], ctx.env("fibers", GONET_QUIET_TLS="0", **SHARED)), 1,
                    "GONET_QUIET_TLS=0")
    launcher = [ctx.gonet, "run", "--lib", ctx.lib, "--mode", "fibers", "--", ctx.probe]
    expect_warnings(ctx.run(launcher, ctx.env(**SHARED)), 1, "gonet run --mode fibers")
    expect_warnings(ctx.run(launcher, ctx.env(GONET_QUIET_TLS="1", **SHARED)), 0,
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
    r = ctx.run([ctx.probe, "fork"], ctx.env("fibers", **SHARED))
    expect_warnings(r, 1, "fork without exec")
    r = ctx.run([ctx.probe, "exec"], ctx.env("fibers", **SHARED))
    found = expect_warnings(r, 2, "fork, then exec")
    if found[0] != found[1]:
        raise Failure(f"the exec'd program's warning differs: {found!r}")


def check_thread_local_is_per_fiber_on_one_worker(ctx):
    """Issue 14: with one worker, a thread that parks in recv while another thread stores into
    its own __thread copy keeps its own value, natively, in threads mode and in fibers mode. With
    GONET_FIBER_TLS=shared (what the warning is about) it sees the other's value."""
    line = "thread-local value after park: %d\n"
    one = {"GONET_WORKERS": "1"}
    for mode, extra, want in ((None, {}, 1), ("threads", {}, 1), ("fibers", one, 1),
                              ("fibers", dict(one, GONET_QUIET_TLS="1", **SHARED), 2)):
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
    ap.add_argument("--runpath-probe", required=True)
    ap.add_argument("--tls-lib", required=True)
    ap.add_argument("--loader", required=True)
    ap.add_argument("--runpath-loader", required=True)
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
