"""Lines of code in attnlab/ at git revisions, and what each commit of a range added or removed.

    python benchmarks/lines_of_code.py 7a5c260 HEAD                 # totals at each revision
    python benchmarks/lines_of_code.py --range 7a5c260..1cf85bf     # the change of every commit in a range

Two counts per revision, over the `.py` files under attnlab/ as git stores them (the working tree is not
read): non-blank lines, and code lines (non-blank lines that hold something other than a comment or a
docstring; a line of a multi-line statement counts once). A range prints one row per commit with its
change in both counts and its subject, so that the commits of a refactoring can be told from those that
added features in between. Prints markdown.
"""

from __future__ import annotations

import argparse
import ast
import io
import subprocess
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"lines_of_code.py: git {' '.join(args)}: {done.stderr.strip().splitlines()[-1]}")
    return done.stdout


def docstring_lines(tree: ast.AST) -> set[int]:
    """Line numbers of the module's, classes' and functions' docstrings."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                lines.update(range(first.lineno, first.end_lineno + 1))
    return lines


def count(source: str) -> tuple[int, int]:
    """(non-blank lines, code lines) of one Python file."""
    nonblank = sum(1 for line in source.splitlines() if line.strip())
    doc = docstring_lines(ast.parse(source))
    code: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in SKIP:
            code.update(n for n in range(tok.start[0], tok.end[0] + 1) if n not in doc)
    return nonblank, len(code)


def totals(rev: str) -> tuple[int, int]:
    nonblank = code = 0
    for path in git("ls-tree", "-r", "--name-only", rev, "attnlab").split():
        if path.endswith(".py"):
            a, b = count(git("show", f"{rev}:{path}"))
            nonblank, code = nonblank + a, code + b
    return nonblank, code


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("revs", nargs="*", help="git revisions to count")
    ap.add_argument("--range", help="A..B: every commit after A up to B, with its change")
    args = ap.parse_args()
    if not args.revs and not args.range:
        ap.error("give revisions, or --range A..B")
    print("| revision | non-blank | code | change (non-blank / code) | subject |\n|---|---|---|---|---|")
    for rev in args.revs:
        nonblank, code = totals(rev)
        print(f"| {rev} | {nonblank:,} | {code:,} | | {git('log', '-1', '--format=%s', rev).strip()[:80]} |")
    if args.range:
        start = args.range.split("..")[0]
        before = totals(start)
        for rev in git("rev-list", "--reverse", args.range).split():
            now = totals(rev)
            subject = git("log", "-1", "--format=%s", rev).strip()[:80]
            print(f"| {rev[:7]} | {now[0]:,} | {now[1]:,} | {now[0] - before[0]:+d} / {now[1] - before[1]:+d} | {subject} |")
            before = now


if __name__ == "__main__":
    main()
