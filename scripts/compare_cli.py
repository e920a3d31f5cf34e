"""Compare the CLI of two revisions: ``--help`` of every command and the corpus replay's output.

Usage (from a checkout with its virtual environment active)::

    python scripts/compare_cli.py OLD_REV [NEW_REV]

Each revision is checked out into a temporary git worktree and run with ``PYTHONPATH`` pointing at it
(the installed dependencies are shared); NEW_REV defaults to the working tree itself. Paths of the
two trees are replaced by ``<tree>`` before comparing. Prints a unified diff per difference and exits
1 when there is any, 0 when the two CLIs are the same. A refactor should show no difference; a
feature only additions.
"""

from __future__ import annotations

import difflib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The corpus replay run on both sides (python only: always available, deterministic).
REPLAY = ["corpus", "run", "--impl", "python"]


def _run(tree: Path, args: list[str]) -> str:
    env = dict(os.environ, PYTHONPATH=str(tree), COLUMNS="120", NO_COLOR="1")
    proc = subprocess.run([sys.executable, "-m", "btfspec", *args], cwd=tree, env=env, capture_output=True,
                          text=True, timeout=600)
    return f"exit {proc.returncode}\n{proc.stdout}{proc.stderr}".replace(str(tree), "<tree>")


def _commands(tree: Path) -> list[list[str]]:
    """Every command path (``["bench", "spec"]`` for a subcommand) the tree's CLI has."""
    code = ("import click, json\nfrom btfspec.cli import main\nout = []\n"
            "def walk(cmd, path):\n"
            "    out.append(path)\n"
            "    if isinstance(cmd, click.Group):\n"
            "        ctx = click.Context(cmd)\n"
            "        for name in cmd.list_commands(ctx):\n"
            "            walk(cmd.get_command(ctx, name), path + [name])\n"
            "walk(main, [])\nprint(json.dumps(out))\n")
    env = dict(os.environ, PYTHONPATH=str(tree))
    proc = subprocess.run([sys.executable, "-c", code], cwd=tree, env=env, capture_output=True, text=True,
                          check=True)
    import json

    return json.loads(proc.stdout)


def _outputs(tree: Path) -> dict[str, str]:
    outs = {" ".join(["btfspec", *cmd, "--help"]): _run(tree, [*cmd, "--help"]) for cmd in _commands(tree)}
    outs["btfspec " + " ".join(REPLAY)] = _run(tree, REPLAY)
    return outs


def _worktree(rev: str, where: Path) -> Path:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(where), rev], check=True)
    return where


def main(argv: list[str]) -> int:
    """Compare OLD_REV with NEW_REV (default: this working tree)."""
    if not 1 <= len(argv) <= 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="btfspec-compare-") as tmp:
        trees = [_worktree(argv[0], Path(tmp) / "old")]
        trees.append(_worktree(argv[1], Path(tmp) / "new") if len(argv) == 2 else ROOT)
        try:
            old, new = (_outputs(t) for t in trees)
        finally:
            for t in trees:
                if t != ROOT:
                    subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(t)], check=False)
    differ = 0
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        differ += 1
        if a is None or b is None:
            print(f"== {key}: only in the {'new' if a is None else 'old'} revision")
            continue
        sys.stdout.writelines(difflib.unified_diff(a.splitlines(True), b.splitlines(True), f"old: {key}",
                                                   f"new: {key}"))
    same = len(set(old) & set(new)) - sum(1 for k in set(old) & set(new) if old[k] != new[k])
    print(f"{same} outputs identical, {differ} different or only on one side")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
