"""Entry point of `python -m fastconv.bench` (see fastconv/bench/__init__.py). It runs in the
environment it is started in, as users' training loops do, and reports the thread settings it
found (BLAS and OpenMP environment variables, NumPy's BLAS threads, PyTorch's, fastconv's)."""

import sys

from .cli import main

sys.exit(main())
