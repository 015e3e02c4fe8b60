"""Thin wrapper around `python -m fastconv.bench` (all options pass through), writing a full run
to bench/results/ (the committed results) by default and a --quick or --smoke run to the
git-ignored bench-quick/, so a quick look never overwrites the committed numbers. The layer lists
are in python/fastconv/bench/shapes/ (shipped inside the package); `--list-shapes` prints where.

    python bench/run_bench.py --quick
    python bench/run_bench.py --threads 2 --batch 1,8
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from fastconv.bench import main as bench_main
    from fastconv.bench.shapes import SHAPES_DIR

    if "--list-shapes" in argv:
        for f in sorted(SHAPES_DIR.glob("*.txt")):
            print(f)
        return 0
    if not any(a == "--out" or a.startswith("--out=") for a in argv):
        partial = "--quick" in argv or "--smoke" in argv
        here = Path(__file__).resolve().parent
        argv += ["--out", str(here.parent / "bench-quick" if partial else here / "results")]
    return bench_main(argv)


if __name__ == "__main__":
    sys.exit(main())
