"""Entry point for ``python -m bot``: hands the command line to :mod:`bot.cli`."""

from bot.cli import main

raise SystemExit(main())
