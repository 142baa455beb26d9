"""``python -m tsla``: the same as the ``tsla`` command."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
