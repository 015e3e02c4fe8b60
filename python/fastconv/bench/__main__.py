"""Entry point of `python -m fastconv.bench` (see fastconv/bench/__init__.py)."""
import sys

from .cli import main

sys.exit(main())
