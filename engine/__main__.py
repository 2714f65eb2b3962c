"""``python -m engine``: the ``engine`` command with this interpreter."""

from engine.cli import main

main()
