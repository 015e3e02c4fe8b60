"""Layer lists of the benchmark, read from the data files in fastconv/bench/shapes/.

One layer a line (see shapes/vgg16.txt):
    conv NAME C H W K R S STRIDE PAD      relu NAME C H W      pool NAME C H W KERNEL STRIDE PAD
    sigmoid | tanh | leaky_relu NAME C H W   (leaky_relu with slope 0.01)
    avgpool NAME C H W KERNEL STRIDE PAD     gavgpool NAME C H W (global average pooling -> (N, C))
    bn NAME C H W                            (training-mode batch normalization)
with optional `batch=N` (a fixed batch, e.g. the MNIST CNN's 64), `dtype=float64` and, on conv
lines, `act=relu|sigmoid|tanh|leaky_relu` (the activation fused into the forward's epilogue:
only the forward pass is timed).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SHAPES_DIR = Path(__file__).resolve().parent / "shapes"

ELEMENTWISE = ("relu", "sigmoid", "tanh", "leaky_relu")
_FIELDS = {
    "conv": ("C", "H", "W", "K", "R", "S", "stride", "pad"),
    "pool": ("C", "H", "W", "kernel", "stride", "pad"),
    "avgpool": ("C", "H", "W", "kernel", "stride", "pad"),
    "gavgpool": ("C", "H", "W"),
    "bn": ("C", "H", "W"),
    **{kind: ("C", "H", "W") for kind in ELEMENTWISE},
}


@dataclass(frozen=True)
class Layer:
    network: str
    kind: str  # conv | pool | one of ELEMENTWISE
    name: str
    C: int
    H: int
    W: int
    K: int = 0  # conv: filters
    R: int = 1  # conv: kernel height / pool: window
    S: int = 1
    stride: int = 1
    pad: int = 0
    batch: int | None = None  # fixed batch (None: the benchmark's --batch values)
    dtype: str = "float32"
    activation: str | None = None  # conv: the fused activation (act=)

    @property
    def P(self) -> int:
        return (self.H + 2 * self.pad - self.R) // self.stride + 1

    @property
    def Q(self) -> int:
        return (self.W + 2 * self.pad - self.S) // self.stride + 1

    def flops(self, N: int) -> int:
        """2 x multiply-adds of one conv pass (forward, backward-data, backward-weight alike)."""
        return 2 * N * self.K * self.P * self.Q * self.C * self.R * self.S if self.kind == "conv" else 0


def parse(text: str, network: str) -> list[Layer]:
    layers = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        tokens = line.split()
        kind, name = tokens[0], tokens[1] if len(tokens) > 1 else "?"
        if kind not in _FIELDS:
            raise ValueError(
                f"{network}:{lineno}: unknown layer kind {kind!r} "
                f"(conv, pool, avgpool, gavgpool, bn, {', '.join(ELEMENTWISE)})"
            )
        fields = _FIELDS[kind]
        values = [t for t in tokens[2:] if "=" not in t]
        options = dict(t.split("=", 1) for t in tokens[2:] if "=" in t)
        if len(values) != len(fields):
            raise ValueError(f"{network}:{lineno}: {kind} needs {' '.join(fields)}, got {values}")
        kw = dict(zip(fields, map(int, values)))
        if kind in ("pool", "avgpool"):
            kw["R"] = kw["S"] = kw.pop("kernel")
        if kind == "gavgpool":  # one window covering the plane
            kw["R"], kw["S"] = kw["H"], kw["W"]
        unknown = set(options) - {"batch", "dtype"} - ({"act"} if kind == "conv" else set())
        if unknown:
            raise ValueError(f"{network}:{lineno}: unknown option(s) {sorted(unknown)}")
        if options.get("dtype", "float32") not in ("float32", "float64"):
            raise ValueError(f"{network}:{lineno}: dtype must be float32 or float64")
        if options.get("act", "relu") not in ELEMENTWISE:
            raise ValueError(f"{network}:{lineno}: act must be one of {', '.join(ELEMENTWISE)}")
        layers.append(
            Layer(
                network,
                kind,
                name,
                batch=int(options["batch"]) if "batch" in options else None,
                dtype=options.get("dtype", "float32"),
                activation=options.get("act"),
                **kw,
            )
        )
    return layers


def load(network: str, path: str | Path | None = None) -> list[Layer]:
    """The layers of shapes/<network>.txt (or of `path`)."""
    path = Path(path) if path else SHAPES_DIR / f"{network}.txt"
    return parse(path.read_text(), network)
