"""Timing hygiene: warm-up, interleaved (round-robin) repeats, medians; a small progress bar."""

from __future__ import annotations

import statistics
import sys
import time


def time_interleaved(
    fns: dict, repeats: int, warmup: int = 1, slow_s: float = 2.0, stat=statistics.median, clock=time.perf_counter
) -> dict:
    """`stat` (median) of the seconds of each callable in `fns`, every benchmark's one timing
    loop. Repeats go round-robin over the contenders, starting one further each round, so a
    slow spell of the machine hits all of them alike. When one warm-up call of any contender
    takes over `slow_s`, repeats drop to 3. clock=time.process_time measures CPU time instead."""
    names = list(fns)
    worst = 0.0
    for name in names:
        for _ in range(warmup):
            t0 = clock()
            fns[name]()
            worst = max(worst, clock() - t0)
    if worst > slow_s:
        repeats = min(repeats, 3)
    times = {name: [] for name in names}
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            t0 = clock()
            fns[name]()
            times[name].append(clock() - t0)
    return {name: stat(ts) for name, ts in times.items()}


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


class Progress:
    """`[#####.....] 12/40 conv3_1 bwd_weight b8 t2  0:42 elapsed, ~1:10 left` on stderr; one
    line per step when stderr is not a terminal (CI logs), redrawn in place when it is."""

    def __init__(self, total: int, stream=None, width: int = 28):
        self.total, self.done, self.width = max(total, 1), 0, width
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.perf_counter()

    def step(self, label: str) -> None:
        """Call before starting work item `label`."""
        elapsed = time.perf_counter() - self.start
        filled = self.width * self.done // self.total
        bar = "#" * filled + "." * (self.width - filled)
        left = f", ~{_clock(elapsed / self.done * (self.total - self.done))} left" if self.done else ""
        line = f"[{bar}] {self.done}/{self.total} {label}  {_clock(elapsed)} elapsed{left}"
        if self.tty:
            self.stream.write("\r\x1b[K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self.done += 1

    def close(self) -> None:
        elapsed = time.perf_counter() - self.start
        line = f"[{'#' * self.width}] {self.total}/{self.total} done in {_clock(elapsed)}"
        self.stream.write(("\r\x1b[K" if self.tty else "") + line + "\n")
        self.stream.flush()
