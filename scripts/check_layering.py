#!/usr/bin/env python3
"""Fails when an include inside core/ runs upward or in a circle (core/README.md, "Layers").

Each folder of core/ may include only the folders listed for it below (its own included); every
include of a core file by another is checked against that list, and the include graph of core's
files must have no cycle. Usage: scripts/check_layering.py [REPO_ROOT]. Exit 0 clean, 1 not.
"""
import os
import re
import sys

# Bottom to top. A folder may include itself and what is listed; nothing else.
MAY_INCLUDE = {
    "base": [],
    "stats": ["base"],
    "poll": ["base", "stats"],
    "faults": ["base"],
    "threads": ["base", "stats", "poll"],
    # Fibers mode builds on threads/: its OS threads park on ThreadParkers, and SIGURG is
    # threads/'s (sigurg.h) in every mode.
    "fibers": ["base", "stats", "poll", "threads"],
    "fd": ["base", "stats", "poll", "faults", "threads", "fibers"],
    "observe": ["base", "stats", "poll", "threads", "fibers", "fd"],
    "runtime": ["base", "stats", "poll", "faults", "threads", "fibers", "fd", "observe"],
    # The launcher's judgement of a program file (gonet check); never in libgonet.so.
    "launch": ["base", "fibers"],
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"(core/[^"]+)"', re.M)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    core = os.path.join(root, "core")
    problems = []
    graph = {}
    for dirpath, _, names in os.walk(core):
        for name in names:
            if not name.endswith((".h", ".cc")):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            parts = rel.split(os.sep)
            if len(parts) != 3:
                problems.append(f"{rel}: every core file belongs in a folder (core/FOLDER/file)")
                continue
            folder = parts[1]
            if folder not in MAY_INCLUDE:
                problems.append(f"{rel}: folder '{folder}' has no place in the layer list")
                continue
            with open(path, encoding="utf-8") as f:
                targets = INCLUDE.findall(f.read())
            graph[rel] = targets
            for t in targets:
                tparts = t.split("/")
                if len(tparts) != 3 or not os.path.exists(os.path.join(root, t)):
                    problems.append(f"{rel}: includes {t}, which does not exist")
                    continue
                tf = tparts[1]
                if tf != folder and tf not in MAY_INCLUDE[folder]:
                    problems.append(f"{rel}: includes {t}: {folder}/ may not include {tf}/ "
                                    f"(upward or sideways)")
    # Cycles among files (a header pair including each other, or a longer loop).
    state = {}

    def visit(node, stack):
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                problems.append("include cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt in graph and not state.get(nxt):
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if not state.get(node):
            visit(node, [])
    for p in problems:
        print("layering:", p)
    print(f"layering: {len(graph)} core files, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
