"""``python -m btfspec`` is the ``btfspec`` command."""

from btfspec.cli import run

if __name__ == "__main__":
    run()
