#!/usr/bin/env python3
"""Fails when a source file of core/ or preload/ is over 600 lines or a function there is over 80
(issue 12: one concept per file, functions that fit on a screen). Usage: check_sizes.py [ROOT].

A function is a brace block opened at namespace or class scope after a parameter list; its
length counts from the line of its name to its closing brace. Comments and strings are blanked
before braces are counted.
"""
import os
import re
import sys

MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 80
SCOPES = ("core", "preload")
NON_FUNCTION = re.compile(r"^\s*(?:template\s*<[^>]*>\s*)?(?:namespace|class|struct|union|enum|"
                          r"extern\s+\"C\")\b")


def blank(text):
    """Comments, string and char literals become spaces (newlines kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("".join(ch if ch == "\n" else " " for ch in text[i:j]))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + " " * (min(j, n) - i - 1) + (c if j < n else ""))
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def functions(text):
    """Yields (first_line, length, name) of each function body."""
    code = blank(text)
    stack = []  # per open brace: True if it is a function body we measure (or inside one)
    header_start = 0
    line = 1
    starts = []
    for i, c in enumerate(code):
        if c == "\n":
            line += 1
        elif c in ";":
            if not any(stack):
                header_start = i + 1
        elif c == "{":
            in_fn = any(stack)
            header = code[header_start:i]
            is_fn = (not in_fn and ")" in header and not NON_FUNCTION.match(header) and
                     "=" not in header.split("(")[0])
            stack.append(is_fn or in_fn)
            if is_fn:
                first = line - header.rstrip().count("\n") - (0 if header.strip() else 0)
                name = header.strip().split("(")[0].split()[-1] if header.strip() else "?"
                head_lines = header.lstrip("\n ").count("\n")
                starts.append((len(stack), line - head_lines, name))
            if not in_fn:
                header_start = i + 1
        elif c == "}":
            if starts and starts[-1][0] == len(stack):
                depth, first, name = starts.pop()
                yield first, line - first + 1, name
            if stack:
                stack.pop()
            if not any(stack):
                header_start = i + 1


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    problems = []
    for scope in SCOPES:
        for dirpath, _, names in os.walk(os.path.join(root, scope)):
            for name in sorted(names):
                if not name.endswith((".cc", ".h", ".c")):
                    continue
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, root)
                with open(path, encoding="utf-8") as f:
                    text = f.read()
                n = text.count("\n")
                if n > MAX_FILE_LINES:
                    problems.append(f"{rel}: {n} lines (at most {MAX_FILE_LINES})")
                for first, length, fn in functions(text):
                    if length > MAX_FUNCTION_LINES:
                        problems.append(f"{rel}:{first}: {fn} is {length} lines "
                                        f"(at most {MAX_FUNCTION_LINES})")
    for p in problems:
        print("sizes:", p)
    print(f"sizes: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
