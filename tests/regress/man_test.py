#!/usr/bin/env python3
"""Man pages gonet(1) and libgonet(7) against the binary they describe (issue 15).

    man_test.py BEHAVIOUR --gonet PATH --man DIR

The option list of every subcommand's --help and of its subsection in gonet(1) must be the
same, so that neither can change without the other; both pages must render without a groff
warning. Exit 0: passed; 1: failed; 77: skipped.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys

SKIP = 77
OPTION_LINE = re.compile(r"^  (?:-\w, )?(--[a-z][a-z-]*)")
LONG_OPTION = re.compile(r"--[a-z][a-z-]*")


class Failure(Exception):
    pass


def run(argv):
    return subprocess.run(argv, capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)


def commands(gonet):
    """The subcommands `gonet --help` lists on its usage lines ("  gonet NAME ...")."""
    out = run([gonet, "--help"]).stdout
    names = []
    for line in out.split("\nrun options")[0].splitlines():
        m = re.match(r"^  gonet ([a-z]+)\b", line)
        if m and m.group(1) not in names and m.group(1) != "help":
            names.append(m.group(1))
    return names


def help_options(gonet, command):
    r = run([gonet, command, "--help"])
    if r.returncode != 0:
        raise Failure("gonet %s --help exits %d: %r" % (command, r.returncode, r.stderr))
    return {m.group(1) for m in map(OPTION_LINE.match, r.stdout.splitlines()) if m}


def man_sections(page):
    """{"run": [lines of `.SS "gonet run ..."`], ...} of a roff page."""
    sections, current = {}, None
    for line in open(page, encoding="utf-8").read().splitlines():
        if line.startswith(".SS ") or line.startswith(".SH "):
            m = re.match(r'^\.SS "gonet ([a-z]+)', line)
            current = m.group(1) if m else None
            if current:
                sections[current] = []
            continue
        if current:
            sections[current].append(line)
    return sections


def man_options(lines):
    """The options a subsection documents: the tag line of each .TP paragraph."""
    found = set()
    for i, line in enumerate(lines):
        if line == ".TP" and i + 1 < len(lines):
            found.update(LONG_OPTION.findall(lines[i + 1].replace("\\-", "-")))
    return found


def man_page_lists_every_option_of_each_command(args):
    page = os.path.join(args.man, "gonet.1")
    sections = man_sections(page)
    names = commands(args.gonet)
    if not {"run", "stats", "dump", "check"} <= set(names):
        raise Failure("gonet --help lists commands %r" % names)
    for name in names:
        if name not in sections:
            raise Failure("gonet.1 has no subsection for `gonet %s`" % name)
        in_help, in_man = help_options(args.gonet, name), man_options(sections[name])
        if in_help != in_man:
            raise Failure("gonet %s: --help lists %s, gonet.1 lists %s (only in help: %s; only "
                          "in the man page: %s)" % (name, sorted(in_help), sorted(in_man),
                                                   sorted(in_help - in_man),
                                                   sorted(in_man - in_help)))


def man_page_documents_every_gonet_variable(args):
    run_help = run([args.gonet, "run", "--help"]).stdout
    wanted = set(re.findall(r"GONET_[A-Z_]+[A-Z]", run_help))
    text = open(os.path.join(args.man, "gonet.1"), encoding="utf-8").read().replace("\\-", "-")
    env = text.split(".SH ENVIRONMENT", 1)[-1].split("\n.SH ", 1)[0]
    missing = sorted(v for v in wanted if v not in env)
    if not wanted or missing:
        raise Failure("gonet.1 ENVIRONMENT lacks %s (run --help names %s)" % (missing,
                                                                               sorted(wanted)))


def man_pages_render_without_warnings(args):
    if shutil.which("groff") is None:
        print("skipped: groff is not installed")
        sys.exit(SKIP)
    for page in ("gonet.1", "libgonet.7"):
        r = run(["groff", "-man", "-Tutf8", "-ww", "-z", os.path.join(args.man, page)])
        if r.returncode != 0 or r.stderr.strip():
            raise Failure("%s: groff says %r" % (page, r.stderr))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("behaviour")
    p.add_argument("--gonet", required=True)
    p.add_argument("--man", required=True)
    args = p.parse_args()
    test = globals().get(args.behaviour)
    if test is None or not callable(test):
        print("unknown behaviour %r" % args.behaviour, file=sys.stderr)
        return 2
    try:
        test(args)
    except Failure as e:
        print("FAIL %s: %s" % (args.behaviour, e), file=sys.stderr)
        return 1
    print("PASS %s" % args.behaviour)
    return 0


if __name__ == "__main__":
    sys.exit(main())
