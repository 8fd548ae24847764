#!/usr/bin/env python3
"""The Debian package (issue 15): build it, install it, use it, remove it.

    deb_test.py --build BUILD_DIR --source SOURCE_DIR --daemon HTTP_THREADS

Builds gonet_<version>_<arch>.deb with scripts/deb.sh from BUILD_DIR (lintian must report no
error, when lintian is installed), installs it with dpkg into a throw-away root (its own dpkg
database, so the machine's is never touched and parallel runs cannot collide on its lock), and
from the installed paths: `gonet check` on the sample daemon and on curl; `gonet run --mode
fibers` of the daemon, answering curl, with `gonet stats` reading it live; `gonet run --mode
fibers` of curl itself; gonet-run; `man gonet` and `man 7 libgonet`. Then `dpkg -r` and
`dpkg --purge` must leave no file of the package behind. Exit 0: passed; 1: failed; 77: skipped
(dpkg is not available).
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SKIP = 77
TIMEOUT_S = 60  # bounds one command; the test as a whole is bounded by ctest's TIMEOUT


class Failure(Exception):
    pass


def check(cond, what, result=None):
    if not cond:
        detail = ""
        if result is not None:
            detail = "\n  exit: %s\n  stdout: %r\n  stderr: %r" % (
                result.returncode, result.stdout[-2000:], result.stderr[-2000:])
        raise Failure(what + detail)


def run(argv, **kw):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GONET_") and
           k != "LD_PRELOAD"}
    env.update(kw.pop("env", {}))
    return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S,
                          stdin=subprocess.DEVNULL, env=env, **kw)


def wait_for(what, probe, limit_s=20.0):
    """Polls probe() until it returns a true value (an observable state, not a delay)."""
    deadline = time.monotonic() + limit_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Failure("timed out waiting for " + what)
        time.sleep(0.02)


class Server:
    """A daemon started in its own session; its first stdout line is "listening on PORT"."""

    def __init__(self, argv):
        self.argv = argv

    def __enter__(self):
        self.out = tempfile.TemporaryFile(mode="w+")
        self.err = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(self.argv, stdout=self.out, stderr=self.err,
                                     stdin=subprocess.DEVNULL, start_new_session=True)

        def port():
            if self.proc.poll() is not None:
                self.err.seek(0)
                raise Failure("%s exited: %s" % (self.argv, self.err.read()[-500:]))
            self.out.seek(0)
            for line in self.out.read().splitlines():
                if line.startswith("listening on "):
                    return int(line.split()[-1])
            return None

        self.port = wait_for("the listening line of %s" % self.argv[0], port)
        return self

    def stderr(self):
        self.err.seek(0)
        return self.err.read()

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def build_deb(args, out):
    r = run([os.path.join(args.source, "scripts", "deb.sh"), args.build, out])
    check(r.returncode == 0, "scripts/deb.sh builds the package", r)
    deb = r.stdout.strip().splitlines()[-1]
    name = os.path.basename(deb)
    check(name.startswith("gonet_") and name.endswith(".deb") and name.count("_") == 2,
          "the package is named gonet_<version>_<arch>.deb: %s" % name)
    return deb


def lint(deb):
    if shutil.which("lintian") is None:
        print("note: lintian is not installed; its check is skipped")
        return
    r = run(["lintian", "--tag-display-limit", "0", deb])
    errors = [l for l in r.stdout.splitlines() if l.startswith("E:")]
    check(not errors and r.returncode in (0, 1), "lintian reports no error", r)


def dpkg(root, *argv):
    return run(["dpkg", "--root=" + root, "--log=" + os.path.join(root, "dpkg.log"),
                "--force-not-root"] + list(argv))


def make_root(root):
    admin = os.path.join(root, "var", "lib", "dpkg")
    for d in ("info", "updates", "triggers"):
        os.makedirs(os.path.join(admin, d), exist_ok=True)
    for f in ("status", "available"):
        open(os.path.join(admin, f), "w").close()


def package_files(root):
    r = dpkg(root, "-L", "gonet")
    check(r.returncode == 0, "dpkg -L gonet", r)
    return [l for l in r.stdout.splitlines() if l.startswith("/usr/")]


def use_installed(args, root):
    gonet = os.path.join(root, "usr", "bin", "gonet")
    gonet_run = os.path.join(root, "usr", "bin", "gonet-run")
    files = package_files(root)
    libs = [f for f in files if f.endswith("/gonet/libgonet.so")]
    check(len(libs) == 1 and libs[0].startswith("/usr/lib/") and
          libs[0].count("/") == 5, "one libgonet.so under /usr/lib/<multiarch>/gonet/: %s" % libs)
    lib = os.path.realpath(root + libs[0])
    for want in ("/usr/bin/gonet", "/usr/bin/gonet-run", "/usr/share/man/man1/gonet.1.gz",
                 "/usr/share/man/man7/libgonet.7.gz", "/usr/share/doc/gonet/copyright",
                 "/usr/share/doc/gonet/changelog.gz", "/usr/share/doc/gonet/examples/gonet.conf",
                 "/usr/share/bash-completion/completions/gonet"):
        check(want in files and os.path.lexists(root + want), "the package installs " + want)

    r = run([gonet, "--version"])
    check(r.returncode == 0 and r.stdout.startswith("gonet "), "installed gonet --version", r)

    # gonet check from the installed binary: the sample daemon, and a Debian program.
    r = run([gonet, "check", "--json", args.daemon])
    check(r.returncode == 0 and json.loads(r.stdout)["mode"] == "fibers",
          "gonet check recommends fibers for the thread-per-connection daemon", r)
    curl = shutil.which("curl", path="/usr/bin")
    check(curl is not None, "curl is installed (scripts/deps.sh test)")
    r = run([gonet, "check", "--json", curl])
    check(r.returncode in (0, 1) and json.loads(r.stdout)["verdict"] != "cannot run",
          "gonet check says curl can run", r)

    # gonet run finds the installed library without --lib, and fibers mode serves.
    r = run([gonet, "run", "-v", "--mode", "fibers", "--", "true"])
    check(r.returncode == 0 and ("LD_PRELOAD=" + lib) in r.stderr,
          "gonet run preloads the installed %s" % lib, r)
    with Server([gonet, "run", "--mode", "fibers", "--", args.daemon, "--port", "0"]) as server:
        url = "http://127.0.0.1:%d/" % server.port
        r = run([curl, "-sS", "--max-time", "20", url, url])
        check(r.returncode == 0 and r.stdout == "hello from http_threads\n" * 2,
              "the daemon under the installed gonet (fibers) answers curl", r)
        r = run([gonet, "stats", str(server.proc.pid)])
        check(r.returncode == 0 and "mode fibers" in r.stdout,
              "installed gonet stats reads the running daemon", r)
        # A Debian program, itself under fibers mode, against the native-or-not daemon.
        r = run([gonet, "run", "--mode", "fibers", "--stats", "--", curl, "-sS", "--max-time",
                 "20", url])
        check(r.returncode == 0 and r.stdout == "hello from http_threads\n" and
              "mode fibers" in r.stderr, "curl under the installed gonet (fibers)", r)
    r = run([gonet_run, "--mode", "fibers", "--", "sh", "-c", 'echo "$LD_PRELOAD $GONET_MODE"'])
    check(r.returncode == 0 and r.stdout.strip() == lib + " fibers",
          "installed gonet-run preloads the installed library", r)

    # The man pages, through man(1) as a user reads them.
    man = shutil.which("man")
    check(man is not None, "man is installed (man-db; scripts/deps.sh test)")
    env = {"MANPATH": os.path.join(root, "usr", "share", "man"), "MANPAGER": "cat",
           "PAGER": "cat", "MANWIDTH": "100", "LC_ALL": "C.UTF-8"}
    r = run([man, "gonet"], env=env)
    check(r.returncode == 0 and "SYNOPSIS" in r.stdout and "gonet check" in r.stdout and
          "--read-timeout" in r.stdout, "man gonet", r)
    r = run([man, "7", "libgonet"], env=env)
    check(r.returncode == 0 and "MODES" in r.stdout and "fibers" in r.stdout, "man 7 libgonet", r)
    r = run([man, "gonet-run"], env=env)
    check(r.returncode == 0 and "gonet-run" in r.stdout, "man gonet-run (an alias)", r)

    r = run(["bash", "-n", root + "/usr/share/bash-completion/completions/gonet"])
    check(r.returncode == 0, "the bash completion parses", r)
    return files


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", required=True)
    p.add_argument("--source", required=True)
    p.add_argument("--daemon", required=True)
    args = p.parse_args()
    if shutil.which("dpkg") is None or shutil.which("dpkg-deb") is None:
        print("skipped: dpkg is not available")
        return SKIP
    with tempfile.TemporaryDirectory(prefix="gonet-deb-test-") as tmp:
        try:
            deb = build_deb(args, tmp)
            lint(deb)
            root = os.path.join(tmp, "root")
            make_root(root)
            r = dpkg(root, "--force-depends", "-i", deb)
            check(r.returncode == 0, "dpkg -i installs the package into the throw-away root", r)
            files = use_installed(args, root)
            r = dpkg(root, "-r", "gonet")
            check(r.returncode == 0, "dpkg -r removes it", r)
            r = dpkg(root, "--purge", "gonet")
            check(r.returncode == 0, "dpkg --purge purges it", r)
            left = [f for f in files if os.path.lexists(root + f) and
                    not os.path.isdir(root + f)]
            check(not left, "no file of the package is left: %s" % left)
            r = dpkg(root, "-s", "gonet")
            check(r.returncode != 0, "dpkg no longer knows gonet", r)
        except (Failure, subprocess.TimeoutExpired, ValueError) as e:
            print("FAIL deb: %s" % e, file=sys.stderr)
            return 1
    print("PASS deb")
    return 0


if __name__ == "__main__":
    sys.exit(main())
