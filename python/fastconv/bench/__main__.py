"""Entry point of `python -m fastconv.bench` (see fastconv/bench/__init__.py)."""
import os
import sys

# NumPy's OpenBLAS keeps its worker threads spinning for a long time after each call (2^28
# cycles by default). On 2 cores those spinning threads took a core from whichever contender was
# timed next: VGG16 conv1_1 weight gradient, batch 8, 2 threads, 15 ms alone, 34-44 ms right
# after a NumPy matmul. OpenBLAS reads OPENBLAS_THREAD_TIMEOUT when it loads (NumPy was already
# imported by `import fastconv`), so the benchmark sets it to the minimum and re-runs itself once.
if "OPENBLAS_THREAD_TIMEOUT" not in os.environ:
    os.environ["OPENBLAS_THREAD_TIMEOUT"] = "4"
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, "-m", "fastconv.bench", *sys.argv[1:]])

from .cli import main  # noqa: E402

sys.exit(main())
