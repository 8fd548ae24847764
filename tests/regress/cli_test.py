#!/usr/bin/env python3
"""CLI tests: the real `gonet` binary and the real scripts/gonet-run, one behaviour per run.

    cli_test.py BEHAVIOUR --gonet PATH --stub PATH --static PATH --script PATH [--daemon PATH]

--stub is a stand-in for libgonet.so whose constructor announces itself on stderr when
GONET_CLI_TEST_ANNOUNCE is set, so a test can prove the preload took effect in the program
without depending on the runtime being built. Registered with ctest in preload/CMakeLists.txt
as cli.BEHAVIOUR. Exit 0: passed; 1: failed; 77: skipped.
"""

import argparse
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile

SKIP = 77
ANNOUNCE = "cli-test-preload: loaded in pid"
TIMEOUT_S = 30  # every command here finishes at once; this only bounds a hang


class Failure(Exception):
    pass


def check(cond, what, result=None):
    if not cond:
        detail = ""
        if result is not None:
            detail = "\n  exit: %s\n  stdout: %r\n  stderr: %r" % (
                result.returncode, result.stdout, result.stderr)
        raise Failure(what + detail)


class Ctx:
    def __init__(self, args, tmp):
        self.gonet = os.path.abspath(args.gonet)
        self.stub = os.path.abspath(args.stub)
        self.static = os.path.abspath(args.static) if args.static else ""
        self.script = os.path.abspath(args.script)
        self.daemon = os.path.abspath(args.daemon) if args.daemon else ""
        self.tmp = tmp

    def env(self, **extra):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("GONET_") and k != "LD_PRELOAD"}
        env.update(extra)
        return env

    def run(self, argv, env=None, cwd=None):
        return subprocess.run(argv, env=env if env is not None else self.env(), cwd=cwd,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=TIMEOUT_S)

    def gonet_run(self, *args, env=None):
        """`gonet run --lib STUB ARGS...` with the stub announcing itself."""
        e = env if env is not None else self.env(GONET_CLI_TEST_ANNOUNCE="1")
        return self.run([self.gonet, "run", "--lib", self.stub] + list(args), env=e)

    def copy_exe(self, src, dst):
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy(src, dst)
        os.chmod(dst, 0o755)
        return dst


def env_of(result):
    """Parses `env` output (the program under test prints its environment)."""
    out = {}
    for line in result.stdout.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    return out


def expect_refusal(ctx, result, code, *needles):
    check(result.returncode == code, "expected exit %d" % code, result)
    lines = [l for l in result.stderr.splitlines() if l]
    check(len(lines) == 1, "expected exactly one line on stderr", result)
    for n in needles:
        check(n in lines[0], "expected %r in the message" % n, result)
    check(ANNOUNCE not in result.stderr and result.stdout == "",
          "the program must not have started", result)


# ---- gonet ----

def version_prints_version(ctx):
    r = ctx.run([ctx.gonet, "--version"])
    check(r.returncode == 0 and r.stdout.startswith("gonet ") and
          any(c.isdigit() for c in r.stdout), "gonet --version", r)


def help_lists_subcommands_with_examples(ctx):
    r = ctx.run([ctx.gonet, "--help"])
    check(r.returncode == 0, "gonet --help exits 0", r)
    for needle in ("gonet run", "gonet stats [PID]", "gonet dump PID", "examples:",
                   "--mode fibers", "--fault 'connect:ECONNREFUSED:p=0.1'"):
        check(needle in r.stdout, "help mentions %r" % needle, r)
    check(ctx.run([ctx.gonet, "help"]).stdout == r.stdout, "`gonet help` is `gonet --help`")
    check(ctx.run([ctx.gonet]).returncode == 2, "no command: usage, exit 2")


def help_command_prints_that_commands_help(ctx):
    # `gonet help stats` used to print the overview: each command's help has one source, its own.
    overview = ctx.run([ctx.gonet, "--help"]).stdout
    for command in ("run", "check", "stats", "dump"):
        r = ctx.run([ctx.gonet, command, "--help"])
        check(r.returncode == 0 and r.stdout and r.stdout != overview,
              "gonet %s --help prints its own help" % command, r)
        h = ctx.run([ctx.gonet, "help", command])
        check(h.returncode == 0 and h.stdout == r.stdout,
              "`gonet help %s` is `gonet %s --help`" % (command, command), h)


def run_help_documents_every_option(ctx):
    r = ctx.run([ctx.gonet, "run", "--help"])
    check(r.returncode == 0, "gonet run --help exits 0", r)
    for opt in ("--mode", "--read-timeout", "--write-timeout", "--connect-timeout", "--stats",
                "--fault", "--fault-seed", "--workers", "--lib", "OP:ERRNO", "OP:delay=",
                "p=", "n=", "after=", "port=", "GONET_FAULT", "examples:", "127"):
        check(opt in r.stdout, "run help mentions %r" % opt, r)
    check(ctx.run([ctx.gonet, "help", "run"]).stdout == r.stdout, "`gonet help run`")


def run_sets_preload_and_execs(ctx):
    r = ctx.gonet_run("--", "sh", "-c", 'echo "$LD_PRELOAD"')
    check(r.returncode == 0, "program ran", r)
    check(r.stdout.strip() == os.path.realpath(ctx.stub), "LD_PRELOAD is the library", r)
    check(ANNOUNCE in r.stderr, "the loader preloaded the library into the program", r)


def run_prepends_to_existing_preload_without_duplicates(ctx):
    other = ctx.copy_exe(ctx.stub, os.path.join(ctx.tmp, "libother.so"))
    stale = os.path.join(ctx.tmp, "old", "libgonet.so")
    ctx.copy_exe(ctx.stub, stale)
    lib = os.path.realpath(ctx.stub)
    existing = "%s %s:%s::%s" % (other, stale, lib, other)
    r = ctx.gonet_run("--", "/usr/bin/env", env=ctx.env(LD_PRELOAD=existing))
    check(r.returncode == 0, "program ran", r)
    got = env_of(r).get("LD_PRELOAD", "").split(":")
    check(got == [lib, other, other],
          "library first, other entries kept in order, stale libgonet.so and the duplicate of "
          "the library dropped; got %r" % got, r)


def run_sets_gonet_environment_from_options(ctx):
    r = ctx.gonet_run("--mode", "fibers", "--stats", "--read-timeout", "30s",
                      "--write-timeout=1.5s", "--connect-timeout", "250ms",
                      "--fault", "connect:ECONNREFUSED:p=0.1", "--fault-seed", "42",
                      "--workers", "3", "--", "/usr/bin/env")
    check(r.returncode == 0, "program ran", r)
    env = env_of(r)
    want = {"GONET_MODE": "fibers", "GONET_STATS": "1", "GONET_READ_TIMEOUT": "30s",
            "GONET_WRITE_TIMEOUT": "1.5s", "GONET_CONNECT_TIMEOUT": "250ms",
            "GONET_FAULT": "connect:ECONNREFUSED:p=0.1", "GONET_FAULT_SEED": "42",
            "GONET_WORKERS": "3"}
    for k, v in want.items():
        check(env.get(k) == v, "%s=%s (got %r)" % (k, v, env.get(k)), r)
    # An unset option leaves an inherited setting alone.
    r = ctx.gonet_run("--", "/usr/bin/env", env=ctx.env(GONET_MODE="passthrough"))
    check(env_of(r).get("GONET_MODE") == "passthrough", "inherited GONET_MODE kept", r)
    r = ctx.gonet_run("--", "/usr/bin/env")
    check("GONET_MODE" not in env_of(r), "no option, no GONET_MODE", r)


def run_joins_repeated_faults_with_semicolons(ctx):
    r = ctx.gonet_run("--fault", "accept:EMFILE:n=2", "--fault", "write:delay=50ms:port=6379",
                      "--fault", "read:ECONNRESET:after=3", "--", "/usr/bin/env")
    check(r.returncode == 0, "program ran", r)
    check(env_of(r).get("GONET_FAULT") ==
          "accept:EMFILE:n=2;write:delay=50ms:port=6379;read:ECONNRESET:after=3",
          "GONET_FAULT joins the specs in order", r)


def run_finds_library_next_to_executable(ctx):
    gonet = ctx.copy_exe(ctx.gonet, os.path.join(ctx.tmp, "build", "gonet"))
    lib = ctx.copy_exe(ctx.stub, os.path.join(ctx.tmp, "build", "libgonet.so"))
    r = ctx.run([gonet, "run", "--", "sh", "-c", 'echo "$LD_PRELOAD"'],
                env=ctx.env(GONET_CLI_TEST_ANNOUNCE="1"))
    check(r.returncode == 0 and r.stdout.strip() == os.path.realpath(lib),
          "library next to the executable", r)
    check(ANNOUNCE in r.stderr, "and it was loaded", r)
    # A symlink to gonet elsewhere still finds the library next to the real file.
    link = os.path.join(ctx.tmp, "gonet-link")
    os.symlink(gonet, link)
    r = ctx.run([link, "run", "--", "sh", "-c", 'echo "$LD_PRELOAD"'])
    check(r.stdout.strip() == os.path.realpath(lib), "found through a symlink", r)
    # --lib and GONET_LIB override it.
    r = ctx.run([gonet, "run", "--", "sh", "-c", 'echo "$LD_PRELOAD"'],
                env=ctx.env(GONET_LIB=ctx.stub))
    check(r.stdout.strip() == os.path.realpath(ctx.stub), "GONET_LIB wins", r)


def run_finds_library_in_install_layout(ctx):
    gonet = ctx.copy_exe(ctx.gonet, os.path.join(ctx.tmp, "prefix", "bin", "gonet"))
    lib = ctx.copy_exe(ctx.stub, os.path.join(ctx.tmp, "prefix", "lib", "gonet", "libgonet.so"))
    r = ctx.run([gonet, "run", "--", "sh", "-c", 'echo "$LD_PRELOAD"'])
    check(r.returncode == 0 and r.stdout.strip() == os.path.realpath(lib),
          "bin/gonet finds lib/gonet/libgonet.so", r)


def multiarch_triplet():
    r = subprocess.run(["gcc", "-print-multiarch"], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 and r.stdout.strip() else ""


def run_finds_library_in_multiarch_install_layout(ctx):
    """The .deb's layout: /usr/bin/gonet, /usr/lib/<triplet>/gonet/libgonet.so."""
    triplet = multiarch_triplet()
    if not triplet:
        sys.exit(SKIP)
    gonet = ctx.copy_exe(ctx.gonet, os.path.join(ctx.tmp, "usr", "bin", "gonet"))
    lib = ctx.copy_exe(ctx.stub, os.path.join(ctx.tmp, "usr", "lib", triplet, "gonet",
                                              "libgonet.so"))
    r = ctx.run([gonet, "run", "--", "sh", "-c", 'echo "$LD_PRELOAD"'])
    check(r.returncode == 0 and r.stdout.strip() == os.path.realpath(lib),
          "bin/gonet finds lib/%s/gonet/libgonet.so" % triplet, r)
    script = ctx.copy_exe(ctx.script, os.path.join(ctx.tmp, "usr", "bin", "gonet-run"))
    r = ctx.run([script, "sh", "-c", 'echo "$LD_PRELOAD"'])
    check(r.returncode == 0 and r.stdout.strip() == os.path.realpath(lib),
          "bin/gonet-run finds it too", r)


def run_missing_library_refused(ctx):
    gonet = ctx.copy_exe(ctx.gonet, os.path.join(ctx.tmp, "lonely", "gonet"))
    r = ctx.run([gonet, "run", "--", "true"])
    expect_refusal(ctx, r, 2, "cannot find libgonet.so", "--lib")
    r = ctx.run([ctx.gonet, "run", "--lib", os.path.join(ctx.tmp, "nope.so"), "--", "true"])
    expect_refusal(ctx, r, 2, "--lib", "nope.so")
    r = ctx.run([gonet, "run", "--", "true"], env=ctx.env(GONET_LIB="/nonexistent/libgonet.so"))
    expect_refusal(ctx, r, 2, "GONET_LIB", "/nonexistent/libgonet.so")


def run_accepts_program_without_double_dash(ctx):
    r = ctx.gonet_run("--mode", "threads", "sh", "-c", 'echo "$GONET_MODE" "$0"', "a0")
    check(r.returncode == 0 and r.stdout.strip() == "threads a0",
          "the first non-option word starts the program; its own options are not gonet's", r)
    r = ctx.gonet_run("/usr/bin/env", "--mode", "x")
    check(r.returncode != 2 or "bad mode" not in r.stderr,
          "options after PROGRAM belong to PROGRAM", r)


def run_returns_program_exit_status(ctx):
    r = ctx.gonet_run("--", "sh", "-c", "exit 42")
    check(r.returncode == 42, "gonet run exits with the program's status (exec)", r)


def refuses_static_binary(ctx):
    if not ctx.static:
        print("skipped: no static libc (libc.a) to build a static test program")
        sys.exit(SKIP)
    r = ctx.gonet_run("--", ctx.static)
    expect_refusal(ctx, r, 2, "statically linked", ctx.static)
    check(ctx.run([ctx.static]).stdout.strip() == "static program ran", "the program works")


def make_setid(ctx, bits):
    path = ctx.copy_exe("/usr/bin/true", os.path.join(ctx.tmp, "setid", "true"))
    os.chmod(path, 0o755 | bits)
    return path


def refuses_setuid_binary(ctx):
    path = make_setid(ctx, stat.S_ISUID)
    expect_refusal(ctx, ctx.gonet_run("--", path), 2, "setuid", "LD_PRELOAD")


def refuses_setgid_binary(ctx):
    path = make_setid(ctx, stat.S_ISGID)
    expect_refusal(ctx, ctx.gonet_run("--", path), 2, "setgid", "LD_PRELOAD")


def accepts_script_and_preloads_its_interpreter(ctx):
    script = os.path.join(ctx.tmp, "hello.sh")
    with open(script, "w") as f:
        f.write('#!/bin/sh\necho "script ran: $1"\n')
    os.chmod(script, 0o755)
    r = ctx.gonet_run("--", script, "x")
    check(r.returncode == 0 and r.stdout.strip() == "script ran: x", "script ran", r)
    check(ANNOUNCE in r.stderr, "its interpreter got the preload", r)
    # Neither ELF nor #!: run by /bin/sh, as execvp does.
    plain = os.path.join(ctx.tmp, "plain")
    with open(plain, "w") as f:
        f.write('echo "plain ran"\n')
    os.chmod(plain, 0o755)
    r = ctx.gonet_run("--", plain)
    check(r.returncode == 0 and r.stdout.strip() == "plain ran", "magic-less file via sh", r)


def refuses_script_with_static_interpreter(ctx):
    if not ctx.static:
        sys.exit(SKIP)
    script = os.path.join(ctx.tmp, "s.sh")
    with open(script, "w") as f:
        f.write("#!%s\n" % ctx.static)
    os.chmod(script, 0o755)
    expect_refusal(ctx, ctx.gonet_run("--", script), 2, "statically linked",
                   "#! interpreter of " + script)


def bad_duration_refused(ctx):
    for opt, value, needle in (("--read-timeout", "30", 'missing unit after "30"'),
                               ("--write-timeout", "5x", 'unknown unit "x"'),
                               ("--connect-timeout", "-1s", "negative"),
                               ("--read-timeout", "", "empty duration")):
        r = ctx.gonet_run(opt, value, "--", "/usr/bin/env")
        expect_refusal(ctx, r, 2, opt, needle)


def bad_mode_refused(ctx):
    expect_refusal(ctx, ctx.gonet_run("--mode", "fiber", "--", "/usr/bin/env"), 2,
                   "--mode", 'bad mode "fiber"', "threads, fibers or passthrough")


def bad_fault_spec_refused_names_part(ctx):
    cases = (("connect:ECONNREFUSD:p=0.1", 'unknown errno "ECONNREFUSD"'),
             ("recv:ECONNRESET", 'unknown op "recv"'),
             ("connect:ECONNREFUSED:p=2", 'bad probability "2"'),
             ("accept:EMFILE:n=0", 'bad count "0"'),
             ("write:delay=50", 'missing unit after "50"'),
             ("connect:ECONNREFUSED:p=0.5:n=2", "conflicts"),
             ("read:EIO:port=70000", 'bad port "70000"'),
             ("read:EIO:foo=1", 'unknown field "foo=1"'))
    for spec, needle in cases:
        r = ctx.gonet_run("--fault", "read:EIO:n=1", "--fault", spec, "--", "/usr/bin/env")
        expect_refusal(ctx, r, 2, "--fault '%s'" % spec, needle)
    # A spec list inside one --fault names which spec in the list.
    r = ctx.gonet_run("--fault", "read:EIO;write:EBOGUS", "--", "/usr/bin/env")
    expect_refusal(ctx, r, 2, 'fault spec 2 "write:EBOGUS"', 'unknown errno "EBOGUS"')


def bad_fault_seed_refused(ctx):
    expect_refusal(ctx, ctx.gonet_run("--fault-seed", "-3", "--", "/usr/bin/env"), 2,
                   "--fault-seed", 'bad fault seed "-3"')


def bad_workers_refused(ctx):
    for value in ("0", "lots", "100000"):
        expect_refusal(ctx, ctx.gonet_run("--workers", value, "--", "/usr/bin/env"), 2,
                       "--workers", 'bad worker count "%s"' % value)


def bad_inherited_environment_refused(ctx):
    env = ctx.env(GONET_CLI_TEST_ANNOUNCE="1", GONET_FAULT="connect:NOPE")
    expect_refusal(ctx, ctx.gonet_run("--", "/usr/bin/env", env=env), 2,
                   "GONET_FAULT=connect:NOPE (from the environment)", 'unknown errno "NOPE"')
    # An option overrides (and so hides) a bad inherited value.
    r = ctx.gonet_run("--fault", "read:EIO", "--", "/usr/bin/env", env=env)
    check(r.returncode == 0 and env_of(r).get("GONET_FAULT") == "read:EIO", "override", r)
    # An empty variable is unset for the runtime, so it is not refused either.
    r = ctx.gonet_run("--", "/usr/bin/env", env=ctx.env(GONET_MODE="", GONET_READ_TIMEOUT=""))
    check(r.returncode == 0, "empty inherited values are ignored", r)


def unknown_option_refused(ctx):
    expect_refusal(ctx, ctx.gonet_run("--bogus", "--", "true"), 2, "unknown option --bogus")
    expect_refusal(ctx, ctx.gonet_run("--mode"), 2, "--mode needs a value")
    expect_refusal(ctx, ctx.gonet_run("--mode", "threads"), 2, "no program given")


def program_not_found_exits_127(ctx):
    expect_refusal(ctx, ctx.gonet_run("--", "gonet-no-such-program-xyz"), 127,
                   "gonet-no-such-program-xyz", "not found")
    expect_refusal(ctx, ctx.gonet_run("--", os.path.join(ctx.tmp, "missing")), 127, "missing")


def program_not_executable_exits_126(ctx):
    path = os.path.join(ctx.tmp, "data.txt")
    with open(path, "w") as f:
        f.write("not a program\n")
    os.chmod(path, 0o644)
    expect_refusal(ctx, ctx.gonet_run("--", path), 126, "data.txt")
    expect_refusal(ctx, ctx.gonet_run("--", ctx.tmp), 126, ctx.tmp)


def unknown_command_refused(ctx):
    r = ctx.run([ctx.gonet, "rn", "--", "true"])
    check(r.returncode == 2 and 'unknown command "rn"' in r.stderr, "unknown command", r)


# ---- scripts/gonet-run ----

def checkout_layout(ctx):
    """A checkout: scripts/gonet-run and build/libgonet.so."""
    script = ctx.copy_exe(ctx.script, os.path.join(ctx.tmp, "co", "scripts", "gonet-run"))
    lib = ctx.copy_exe(ctx.stub, os.path.join(ctx.tmp, "co", "build", "libgonet.so"))
    return script, os.path.realpath(lib)


def gonet_run_script_prepends_preload(ctx):
    script, lib = checkout_layout(ctx)
    other = ctx.copy_exe(ctx.stub, os.path.join(ctx.tmp, "libother.so"))
    existing = "%s:/old/libgonet.so %s" % (other, lib)
    r = ctx.run([script, "--", "/usr/bin/env"],
                env=ctx.env(LD_PRELOAD=existing, GONET_CLI_TEST_ANNOUNCE="1"))
    check(r.returncode == 0, "program ran", r)
    got = env_of(r).get("LD_PRELOAD", "").split(":")
    check(got == [lib, other], "library first, no duplicates, no stale copy; got %r" % got, r)
    check(ANNOUNCE in r.stderr, "the preload took effect", r)
    # Run through dash, the POSIX shell the script is written for.
    if shutil.which("dash"):
        r = ctx.run(["dash", script, "--", "sh", "-c", 'echo "$LD_PRELOAD"'])
        check(r.returncode == 0 and r.stdout.strip() == lib, "works under dash", r)


def gonet_run_script_finds_library_in_install_layout(ctx):
    script = ctx.copy_exe(ctx.script, os.path.join(ctx.tmp, "prefix", "bin", "gonet-run"))
    lib = ctx.copy_exe(ctx.stub, os.path.join(ctx.tmp, "prefix", "lib", "gonet", "libgonet.so"))
    r = ctx.run([script, "sh", "-c", 'echo "$LD_PRELOAD"'])
    check(r.returncode == 0 and r.stdout.strip() == os.path.realpath(lib), "install layout", r)
    r = ctx.run([script, "--lib", ctx.stub, "sh", "-c", 'echo "$LD_PRELOAD"'])
    check(r.stdout.strip() == os.path.realpath(ctx.stub), "--lib wins", r)


def gonet_run_script_sets_mode_and_options(ctx):
    script, _ = checkout_layout(ctx)
    r = ctx.run([script, "--mode", "fibers", "--stats", "--read-timeout", "30s",
                 "--connect-timeout=2m", "--fault", "connect:ECONNREFUSED:p=0.1",
                 "--fault", "write:delay=5ms", "--fault-seed", "7", "--workers", "2",
                 "--", "/usr/bin/env"])
    check(r.returncode == 0, "program ran", r)
    env = env_of(r)
    want = {"GONET_MODE": "fibers", "GONET_STATS": "1", "GONET_READ_TIMEOUT": "30s",
            "GONET_CONNECT_TIMEOUT": "2m", "GONET_FAULT_SEED": "7", "GONET_WORKERS": "2",
            "GONET_FAULT": "connect:ECONNREFUSED:p=0.1;write:delay=5ms"}
    for k, v in want.items():
        check(env.get(k) == v, "%s=%s (got %r)" % (k, v, env.get(k)), r)
    r = ctx.run([script, "--help"])
    check(r.returncode == 0 and "--mode" in r.stdout, "--help", r)
    r = ctx.run([script, "--read-timeout", "30", "--", "true"])
    expect_refusal(ctx, r, 2, "--read-timeout 30")


def gonet_run_script_refuses_static_binary(ctx):
    if not ctx.static:
        sys.exit(SKIP)
    if not shutil.which("readelf"):
        print("skipped: readelf not installed, the script skips this check with a warning")
        sys.exit(SKIP)
    script, _ = checkout_layout(ctx)
    expect_refusal(ctx, ctx.run([script, "--", ctx.static]), 2, "statically linked")


def gonet_run_script_refuses_setuid_binary(ctx):
    script, _ = checkout_layout(ctx)
    expect_refusal(ctx, ctx.run([script, "--", make_setid(ctx, stat.S_ISUID)]), 2, "setuid")


def gonet_run_script_bad_mode_refused(ctx):
    script, _ = checkout_layout(ctx)
    expect_refusal(ctx, ctx.run([script, "--mode", "fiber", "--", "true"]), 2, 'bad mode "fiber"')
    expect_refusal(ctx, ctx.run([script, "--bogus", "--", "true"]), 2, "unknown option --bogus")


def gonet_run_script_program_not_found_exits_127(ctx):
    script, _ = checkout_layout(ctx)
    expect_refusal(ctx, ctx.run([script, "--", "gonet-no-such-program-xyz"]), 127, "not found")


# ---- gonet check ----

def check_json(ctx, *argv):
    r = ctx.run([ctx.gonet, "check", "--json"] + list(argv))
    try:
        return r, json.loads(r.stdout)
    except ValueError:
        raise Failure("gonet check --json printed no JSON object\n  stdout: %r\n  stderr: %r"
                      % (r.stdout, r.stderr))


def check_help_documents_every_option(ctx):
    r = ctx.run([ctx.gonet, "check", "--help"])
    check(r.returncode == 0, "gonet check --help exits 0", r)
    for needle in ("--json", "exit status", "threads", "sockets", "poll/epoll", "io_uring",
                   "signalfd", "examples:"):
        check(needle in r.stdout, "check help mentions %r" % needle, r)
    check(ctx.run([ctx.gonet, "help", "check"]).stdout == r.stdout, "`gonet help check`")
    check("gonet check" in ctx.run([ctx.gonet, "--help"]).stdout, "gonet --help lists check")


def check_recommends_fibers_for_thread_per_connection_daemon(ctx):
    if not ctx.daemon:
        sys.exit(SKIP)
    r = ctx.run([ctx.gonet, "check", ctx.daemon, "--port", "8080"])
    check(r.returncode == 0, "a thread-per-connection daemon is fine (exit 0)", r)
    for needle in ("dynamically", "--mode fibers", "thread-per-connection", "std::thread"):
        check(needle in r.stdout, "check output mentions %r" % needle, r)
    r, j = check_json(ctx, ctx.daemon)
    check(r.returncode == 0 and j["verdict"] == "fine" and j["exit"] == 0, "JSON verdict", r)
    check(j["mode"] == "fibers" and j["dynamic"] is True, "JSON mode and linkage", r)
    fam = j["families"]
    check(fam["threads"]["imported"] and fam["sockets"]["imported"], "threads and sockets", r)
    check("accept" in fam["sockets"]["symbols"], "accept among the socket imports", r)
    check(not fam["io_uring"]["imported"] and not fam["signalfd"]["imported"], "no io_uring", r)
    check(any(os.path.basename(p).startswith("libc.so") for p in j["libraries"]),
          "libc is among the libraries found", r)


def check_refuses_static_binary(ctx):
    if not ctx.static:
        sys.exit(SKIP)
    r = ctx.run([ctx.gonet, "check", ctx.static])
    check(r.returncode == 2 and "cannot run under gonet" in r.stdout and
          "statically linked" in r.stdout, "static: cannot run, exit 2, says why", r)
    r, j = check_json(ctx, ctx.static)
    check(r.returncode == 2 and j["verdict"] == "cannot run" and "statically" in j["refusal"],
          "JSON says why", r)


def check_refuses_setuid_binary(ctx):
    r = ctx.run([ctx.gonet, "check", make_setid(ctx, stat.S_ISUID)])
    check(r.returncode == 2 and "setuid" in r.stdout, "setuid: cannot run, exit 2", r)


def check_program_not_found_exits_2(ctx):
    r = ctx.run([ctx.gonet, "check", "gonet-no-such-program-xyz"])
    check(r.returncode == 2 and "not found" in r.stdout, "not found: cannot run, exit 2", r)
    r = ctx.run([ctx.gonet, "check"])
    check(r.returncode == 2 and "no program" in r.stderr, "no program: usage error", r)
    r = ctx.run([ctx.gonet, "check", "--bogus", "true"])
    check(r.returncode == 2 and "bogus" in r.stderr, "unknown option: usage error", r)


def check_script_is_judged_by_its_interpreter(ctx):
    script = os.path.join(ctx.tmp, "tool.sh")
    with open(script, "w") as f:
        f.write("#!/bin/sh\necho hi\n")
    os.chmod(script, 0o755)
    r, j = check_json(ctx, script)
    check(j["image"] == "/bin/sh" and "#! interpreter" in j["via"], "image is /bin/sh", r)
    check(r.returncode in (0, 1) and j["mode"] == "threads", "a shell runs in threads mode", r)


def check_names_missing_library(ctx):
    """A DT_NEEDED library the loader would not find: a caveat (exit 1), named."""
    gcc = shutil.which("gcc")
    if gcc is None:
        sys.exit(SKIP)
    d = os.path.join(ctx.tmp, "missing")
    os.makedirs(d)
    with open(os.path.join(d, "lib.c"), "w") as f:
        f.write("int gonet_test_lib(void) { return 0; }\n")
    with open(os.path.join(d, "main.c"), "w") as f:
        f.write("int gonet_test_lib(void);\nint main(void) { return gonet_test_lib(); }\n")
    lib = os.path.join(d, "libgonetcheckgone.so")
    r = ctx.run([gcc, "-shared", "-fPIC", "-o", lib, os.path.join(d, "lib.c")])
    check(r.returncode == 0, "build the library", r)
    prog = os.path.join(d, "prog")
    r = ctx.run([gcc, "-o", prog, os.path.join(d, "main.c"), "-L" + d, "-lgonetcheckgone"])
    check(r.returncode == 0, "build the program", r)
    os.unlink(lib)
    r, j = check_json(ctx, prog)
    check(r.returncode == 1 and j["verdict"] == "caveats", "a missing library is a caveat", r)
    check(j["missing_libraries"] == ["libgonetcheckgone.so"], "the missing library is named", r)
    check(any("libgonetcheckgone.so" in c for c in j["caveats"]), "and explained", r)


def check_debian_programs(ctx):
    """curl (a client: its socket calls are libcurl's, found through DT_NEEDED) and python3."""
    curl, python3 = "/usr/bin/curl", "/usr/bin/python3"
    if not (os.access(curl, os.X_OK) and os.access(python3, os.X_OK)):
        sys.exit(SKIP)
    r, j = check_json(ctx, curl)
    check(r.returncode in (0, 1) and j["exit"] == r.returncode, "curl can run", r)
    check(j["mode"] == "threads" and "client" in j["reason"], "curl is a client: threads", r)
    check("libcurl.so.4" in j["families"]["sockets"]["objects"], "libcurl's sockets seen", r)
    check(any("libcurl.so" in p for p in j["libraries"]), "libcurl resolved", r)
    check(not j["missing_libraries"], "every library found", r)
    r, j = check_json(ctx, python3)
    check(r.returncode in (0, 1) and j["dynamic"], "python3 can run", r)
    check(j["families"]["sockets"]["imported"], "python3 imports socket calls", r)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("behaviour")
    p.add_argument("--gonet", required=True)
    p.add_argument("--stub", required=True)
    p.add_argument("--static", default="")
    p.add_argument("--script", required=True)
    p.add_argument("--daemon", default="", help="a thread-per-connection sample (http_threads)")
    args = p.parse_args()
    test = globals().get(args.behaviour)
    if test is None or not callable(test):
        print("unknown behaviour %r" % args.behaviour, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="gonet-cli-test-") as tmp:
        try:
            test(Ctx(args, tmp))
        except Failure as e:
            print("FAIL %s: %s" % (args.behaviour, e), file=sys.stderr)
            return 1
    print("PASS %s" % args.behaviour)
    return 0


if __name__ == "__main__":
    sys.exit(main())
