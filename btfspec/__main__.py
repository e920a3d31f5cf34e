"""``python -m btfspec`` is the ``btfspec`` command."""

from btfspec.cli import main

if __name__ == "__main__":
    main()
