"""`python -m lucid_jit explain [--no-graphs] script.py [args...]`

Runs the script as `__main__` (with `sys.argv` set to the script and its arguments, and the
script's directory first on `sys.path`), recording every function it compiles; then prints the
explain report of each compiled function that was called. The exit status is the script's.
"""

from __future__ import annotations

import argparse
import os
import sys


def _parsers() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The program's parser and its `explain` command's."""
    parser = argparse.ArgumentParser(
        prog="python -m lucid_jit",
        description="Inspect what lucid.compile does with a program.")
    commands = parser.add_subparsers(dest="command", metavar="command", required=True)
    explain = commands.add_parser(
        "explain", help="run a script and report on every compiled function it called",
        description="Run a Python script as __main__ and print, for every compiled function it "
                    "called, its graphs, node counts per pass, guards, write-backs, graph breaks, "
                    "recompiles and compile times.")
    explain.add_argument("--no-graphs", action="store_true",
                         help="leave the IR dumps out of the reports (summaries only)")
    explain.add_argument("script", help="the Python file to run")
    explain.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script")
    return parser, explain


def main(argv: list[str] | None = None) -> int:
    parser, explain = _parsers()
    ns = parser.parse_args(argv)  # bad usage: usage on stderr, exit status 2
    if not os.path.isfile(ns.script):
        explain.print_usage(sys.stderr)
        print(f"{explain.prog}: error: no such file: {ns.script}", file=sys.stderr)
        return 2

    from lucid_jit.explain import ExplainReport, run_script

    status, found = run_script(ns.script, ns.args)
    sys.stderr.flush()
    called = [f for f in found if f.calls]
    unused = [f.name for f in found if not f.calls]
    print(f"\n##### lucid_jit explain {os.path.basename(ns.script)}: "
          f"{len(called)} compiled function{'' if len(called) == 1 else 's'} called"
          + (f" ({len(unused)} never called: {', '.join(unused)})" if unused else "")
          + (f"; the script exited with status {status}" if status else ""))
    for compiled in called:
        print()
        print(ExplainReport(compiled).format(graphs=not ns.no_graphs))
    sys.stdout.flush()
    return status


if __name__ == "__main__":
    sys.exit(main())
