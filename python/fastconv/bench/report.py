"""Summaries, the markdown tables (bench.md) and the chart (bench.png) of a benchmark run."""

from __future__ import annotations

import math

from .libs import FASTCONV, KERNEL_ONLY, TORCH
from .machine import describe_threads


def _geomean(values):
    values = [v for v in values if v and v > 0]
    return math.exp(sum(map(math.log, values)) / len(values)) if values else None


def best_fastconv(row, key="ms"):
    """(layout name, ms) of fastconv's faster layout in a result row, or (None, None)."""
    cands = [(name, row["ms"].get(name)) for name in FASTCONV if row["ms"].get(name)]
    return min(cands, key=lambda c: c[1]) if cands else (None, None)


def summarize(rows, networks):
    out = {"conv_vs_torch": [], "memory_bound": [], "vs_numpy": [], "networks": []}
    groups = {}
    for r in rows:
        if r["kind"] == "conv":
            groups.setdefault((r["network"], r["pass"], r["batch"], r["threads"], r["dtype"]), []).append(r)
    for (net, pass_, batch, threads, dtype), rs in sorted(groups.items()):
        ratios = []
        for r in rs:
            lay, ms = best_fastconv(r)
            if ms and r.get("torch_best_ms"):
                ratios.append((r["torch_best_ms"] / ms, r["layer"]))
        big = [
            r["pct_peak"].get(best_fastconv(r)[0])
            for r in rs
            if r["shape"]["C"] >= 64 and r["shape"]["K"] >= 64 and best_fastconv(r)[0]
        ]
        numpy_x = [r["ms"]["numpy"] / best_fastconv(r)[1] for r in rs if r["ms"].get("numpy") and best_fastconv(r)[1]]
        entry = {
            "network": net,
            "pass": pass_,
            "batch": batch,
            "threads": threads,
            "dtype": dtype,
            "layers": len(rs),
            "geomean_x_vs_torch_best": _geomean([x for x, _ in ratios]),
            "min_x_vs_torch_best": min(ratios)[0] if ratios else None,
            "min_layer": min(ratios)[1] if ratios else None,
            "mean_pct_peak_C_K_ge_64": (sum(big) / len(big)) if big and all(b is not None for b in big) else None,
            "geomean_x_vs_numpy": _geomean(numpy_x),
        }
        out["conv_vs_torch"].append(entry)
    for r in rows:
        if r["kind"] != "conv":
            out["memory_bound"].append(
                {
                    "network": r["network"],
                    "layer": r["layer"],
                    "pass": r["pass"],
                    "batch": r["batch"],
                    "threads": r["threads"],
                    "MB": r["bytes"] / 1e6,
                    **{f"{name} GB/s": r["gbps"].get(name) for name in FASTCONV + TORCH},
                    **{f"{name} GB/s": r["gbps"].get(name) for name in KERNEL_ONLY},
                    **{f"{name} % copy": r["pct_copy"].get(name) for name in FASTCONV + KERNEL_ONLY},
                }
            )
    for n in networks:
        lay, ms = best_fastconv(n)
        out["networks"].append(
            {
                "name": n["name"],
                "batch": n["batch"],
                "threads": n["threads"],
                "fastconv_best_ms": ms,
                "fastconv_best_layout": lay,
                "torch_best_ms": n.get("torch_best_ms"),
                "x_vs_torch_best": (n["torch_best_ms"] / ms) if ms and n.get("torch_best_ms") else None,
                "x_vs_numpy": (n["ms"]["numpy"] / ms) if ms and n["ms"].get("numpy") else None,
            }
        )
    return out


def _f(v, fmt="{:.2f}"):
    return "—" if v is None else fmt.format(v)


def terminal_summary(result, files) -> str:
    """A few lines for the terminal: the tables are in the files."""
    lines = []
    for r in result["loops"]:
        if r.get("skipped") or not r["ms"].get("fastconv"):
            continue
        vs = f", {r['x_vs_torch']:.2f}x PyTorch" if r.get("x_vs_torch") else ""
        lines.append(f"  {r['key']}  {r['name'][:52]:52s} {r['ms']['fastconv']:8.2f} ms{vs}")
    for e in result["summary"]["conv_vs_torch"]:
        if e["geomean_x_vs_torch_best"]:
            lines.append(
                f"  conv {e['network']} {e['pass']} {e['dtype']} batch {e['batch']}, {e['threads']} thr: "
                f"{e['geomean_x_vs_torch_best']:.2f}x PyTorch's best layout (geomean of {e['layers']})"
            )
    for n in result["summary"]["networks"]:
        if n["x_vs_torch_best"]:
            lines.append(f"  {n['name']} (batch {n['batch']}): {n['x_vs_torch_best']:.2f}x PyTorch")
    head = "fastconv.bench: " + ("all results verified" if result["ok"] else "VERIFICATION FAILED")
    return "\n".join([head + " (x > 1: fastconv faster)", *lines, "tables and chart: " + ", ".join(map(str, files))])


def markdown(result) -> str:
    m, cfg = result["machine"], result["config"]
    lines = [
        f"# fastconv benchmark ({result['date']})",
        "",
        f"`{result['command']}`",
        "",
        f"- CPU: {m['cpu']} ({m['logical_cpus']} logical CPUs); fastconv {result['fastconv_version']} "
        f"ISA {result['isa']}; PyTorch {result['torch_version'] or 'not installed'}; NumPy {result['numpy_version']}",
        "- Measured FP32 FMA peak (GFLOP/s): "
        + "; ".join(
            f"{isa} " + ", ".join(f"{t} thr {v:.0f}" for t, v in per.items())
            for isa, per in m["peak_gflops_f32"].items()
        )
        + " (float64 peak = half; the larger of the wall-time and the per-thread CPU-time rate, see machine.py)",
        "- Measured copy bandwidth (GB/s, read + write, {:.0f} MiB): ".format(m["copy_bytes"] / 2**20)
        + "; ".join(
            f"{t} thr {m['copy_gbps'][t]:.1f} (streaming stores {m['copy_gbps_streaming'][t]:.1f})"
            for t in m["copy_gbps"]
        ),
        "- Load average (1 min) before / after the run: "
        + " / ".join(_f(v, "{:.1f}") for v in m.get("loadavg_1min_before_after", [None, None]))
        + f" on {m['logical_cpus']} CPUs (other processes make multi-thread timings noisy)",
        f"- Thread settings found (the benchmark runs in the environment it was started in): "
        f"{describe_threads(result['thread_settings'])}",
        f"- Repeats {cfg['repeats']} (median, interleaved round-robin); verification: "
        f"{result['verification']['checked']} checks, {len(result['verification']['failed'])} failed",
        "",
    ]
    lines += loops_markdown(result["loops"])
    s = result["summary"]
    if s["conv_vs_torch"]:
        lines += [
            "## Convolution summary (× = PyTorch best layout ms / fastconv best layout ms; > 1 is faster)",
            "",
            "| network | pass | batch | threads | dtype | geomean × vs PyTorch | min × (layer) "
            "| mean % peak (C,K ≥ 64) | geomean × vs NumPy |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for e in s["conv_vs_torch"]:
            lines.append(
                f"| {e['network']} | {e['pass']} | {e['batch']} | {e['threads']} | {e['dtype']} | "
                f"{_f(e['geomean_x_vs_torch_best'])} | {_f(e['min_x_vs_torch_best'])} ({e['min_layer'] or '—'}) | "
                f"{_f(e['mean_pct_peak_C_K_ge_64'], '{:.0f}')} | {_f(e['geomean_x_vs_numpy'])} |"
            )
        lines.append("")
    if s["networks"]:
        lines += [
            "## Whole networks",
            "",
            "| network | batch | threads | fastconv ms (layout) | PyTorch best ms | × vs PyTorch | × vs NumPy |",
            "|---|---|---|---|---|---|---|",
        ]
        for e in s["networks"]:
            lines.append(
                f"| {e['name']} | {e['batch']} | {e['threads']} | {_f(e['fastconv_best_ms'])} "
                f"({e['fastconv_best_layout'] or '—'}) | {_f(e['torch_best_ms'])} | {_f(e['x_vs_torch_best'])} | "
                f"{_f(e['x_vs_numpy'])} |"
            )
        lines.append("")
    conv_rows = [r for r in result["results"] if r["kind"] == "conv"]
    if conv_rows:
        lines += [
            "## Convolution layers",
            "",
            "| network | layer | pass | batch | thr | fastconv NCHW ms | fastconv NHWC ms | PyTorch NCHW ms | "
            "PyTorch CL ms | NumPy ms | fastconv GFLOP/s | % peak | × vs PyTorch | × vs NumPy | check |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in conv_rows:
            lay, ms = best_fastconv(r)
            ms_ = r["ms"]
            lines.append(
                f"| {r['network']} | {r['layer']} | {r['pass']} | {r['batch']} | {r['threads']} | "
                f"{_f(ms_.get('fastconv NCHW'))} | {_f(ms_.get('fastconv NHWC'))} | {_f(ms_.get('torch NCHW'))} | "
                f"{_f(ms_.get('torch channels_last'))} | {_f(ms_.get('numpy'))} | "
                f"{_f(r['gflops'].get(lay), '{:.0f}')} | {_f(r['pct_peak'].get(lay), '{:.0f}')} | "
                f"{_f(r['torch_best_ms'] / ms if ms and r.get('torch_best_ms') else None)} | "
                f"{_f(ms_['numpy'] / ms if ms and ms_.get('numpy') else None)} | {'ok' if r['verified'] else 'FAIL'} |"
            )
        lines.append("")
    mem_rows = [r for r in result["results"] if r["kind"] != "conv"]
    if mem_rows:
        lines += [
            "## Max pooling and ReLU (GB/s = bytes read + written / time; % of the measured copy bandwidth)",
            "",
            "fastconv as called (a new output per call) and, in brackets, its kernel alone with outputs "
            "allocated once (no page faults of a fresh output). The copy bandwidth is measured on buffers far "
            "larger than the caches; an operand of these sizes (10-40 MB) is partly still in the last-level "
            "cache from the previous repeat, so a kernel can read faster than memory: above 100% is that "
            "cache, not a wrong byte count.",
            "",
            "| network | layer | pass | batch | thr | MB | fastconv NCHW GB/s (% copy) [kernel] | "
            "fastconv NHWC GB/s (% copy) [kernel] | PyTorch NCHW GB/s | PyTorch CL GB/s | NumPy GB/s | "
            "× vs PyTorch | check |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in mem_rows:
            lay, ms = best_fastconv(r)
            g, pc = r["gbps"], r["pct_copy"]
            lines.append(
                f"| {r['network']} | {r['layer']} | {r['pass']} | {r['batch']} | {r['threads']} | "
                f"{r['bytes'] / 1e6:.1f} | "
                f"{_f(g.get('fastconv NCHW'), '{:.1f}')} ({_f(pc.get('fastconv NCHW'), '{:.0f}')}%) "
                f"[{_f(g.get('fastconv NCHW kernel'), '{:.1f}')} ({_f(pc.get('fastconv NCHW kernel'), '{:.0f}')}%)] | "
                f"{_f(g.get('fastconv NHWC'), '{:.1f}')} ({_f(pc.get('fastconv NHWC'), '{:.0f}')}%) "
                f"[{_f(g.get('fastconv NHWC kernel'), '{:.1f}')} ({_f(pc.get('fastconv NHWC kernel'), '{:.0f}')}%)] | "
                f"{_f(g.get('torch NCHW'), '{:.1f}')} | {_f(g.get('torch channels_last'), '{:.1f}')} | "
                f"{_f(g.get('numpy'), '{:.1f}')} | "
                f"{_f(r['torch_best_ms'] / ms if ms and r.get('torch_best_ms') else None)} | "
                f"{'ok' if r['verified'] else 'FAIL'} |"
            )
        lines.append("")
    if result["verification"]["failed"]:
        lines += ["## Verification failures", ""] + [f"- {f}" for f in result["verification"]["failed"]] + [""]
    return "\n".join(lines)


def loops_markdown(rows) -> list:
    """The training-loop table (fastconv/bench/loops.py), first in bench.md."""
    if not rows:
        return []
    lines = [
        "## Training loops (one step through the public API, as users run it)",
        "",
        "Medians, fastconv and the other contenders interleaved in one process, same threads. "
        "× = other ms / fastconv ms (> 1: fastconv is faster). Kernels = the sum of the standalone "
        "times of the kernel calls one fastconv step makes (row d: also the course's NumPy affine, ReLU "
        "and loss calls); step / kernels - 1 is the step's overhead (Python, copies, NumPy calls: loss, "
        "optimizer, Dense matmuls where Dense runs on NumPy).",
        "",
        "| row | step | batch | input | dtype | thr | fastconv ms | PyTorch ms | × vs PyTorch | NumPy ms | "
        "× vs NumPy | kernels ms | step / kernels | check |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for r in rows:
        ms = r["ms"]
        check = r.get("check") or {}
        ok = "—" if not check else ("ok" if check["ok"] else "FAIL")
        lines.append(
            f"| {r['key']} | {r['name']} | {r.get('batch', '—')} | {r.get('input', '—')} | "
            f"{r.get('dtype', '—')} | {r['threads']} | {_f(ms.get('fastconv'))} | {_f(ms.get('torch'))} | "
            f"{_f(r.get('x_vs_torch'))} | {_f(ms.get('numpy'))} | {_f(r.get('x_vs_numpy'))} | "
            f"{_f(r.get('kernels_ms'))} | {_f(r.get('step_over_kernels'))} | {ok} |"
        )
        if r.get("skipped"):
            notes.append(f"- {r['key']}: not timed: {r['skipped']}")
            continue
        what = [f"head {r['head']}"] if r.get("head") else []
        what += [r["loss"], r["optimizer"]]
        if r.get("frozen_layers_with_params"):
            what.append(f"{r['frozen_layers_with_params']} frozen layers with parameters")
        calls = ", ".join(f"{n} {c}" for n, c in r.get("kernel_calls", {}).items())
        notes.append(f"- {r['key']}: {'; '.join(what)}; kernel calls per step: {calls or 'none recorded'}")
    return lines + [""] + notes + ([""] if notes else [])


def _ratios_vs_torch(result):
    """(label, fastconv's speed-up over PyTorch's best layout) for every row of the run that has
    both: training loops, whole networks, conv, pooling and ReLU layers."""
    out = [(f"loop {r['key']}: {r['name'][:34]}", r["x_vs_torch"]) for r in result["loops"] if r.get("x_vs_torch")]
    out += [
        (f"{n['name']} b{n['batch']}", n["x_vs_torch_best"])
        for n in result["summary"]["networks"]
        if n.get("x_vs_torch_best")
    ]
    for r in result["results"]:
        _, ms = best_fastconv(r)
        if ms and r.get("torch_best_ms"):
            out.append(
                (f"{r['network']} {r['layer']} {r['pass']} b{r['batch']} t{r['threads']}", r["torch_best_ms"] / ms)
            )
    return out


def _plot_ratios(ax, ratios):
    labels, values = zip(*ratios)
    ax.barh(range(len(values)), values, color=["tab:blue" if v >= 1 else "tab:red" for v in values])
    ax.axvline(1.0, color="k", linewidth=1)
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("speed-up over PyTorch's best layout (> 1: fastconv faster)")
    ax.set_title("every row of this run: training loops, networks, conv, pooling and ReLU", fontsize=10)


def chart(result, path) -> str | None:
    """Per-layer GFLOP/s of the first network's conv layers (fastconv best layout, PyTorch best,
    NumPy) for each pass, with the measured peak as a line, and below them the speed-up over
    PyTorch of every row the run measured. Returns a note when it cannot."""
    try:
        import matplotlib  # noqa: PLC0415

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        return "matplotlib not installed: no chart (pip install 'fastconv[bench]')"
    rows = [r for r in result["results"] if r["kind"] == "conv"]
    if not rows:
        return "no convolution results: no chart"
    net = rows[0]["network"]
    batch = rows[0]["batch"]
    threads = max(r["threads"] for r in rows if r["network"] == net)
    rows = [
        r
        for r in rows
        if r["network"] == net and r["batch"] == batch and r["threads"] == threads and r["dtype"] == rows[0]["dtype"]
    ]
    passes = [p for p in ("fwd", "bwd_data", "bwd_weight") if any(r["pass"] == p for r in rows)]
    ratios = _ratios_vs_torch(result)
    heights = [3.2] * len(passes) + ([max(2.0, 0.22 * len(ratios) + 0.8)] if ratios else [])
    fig, axes = plt.subplots(
        len(heights),
        1,
        figsize=(max(8, 0.75 * len(rows) / len(passes) + 3), sum(heights)),
        squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )
    if ratios:
        _plot_ratios(axes[-1, 0], ratios)
    for ax, pass_ in zip(axes[:, 0], passes):
        rs = [r for r in rows if r["pass"] == pass_]
        names = [r["layer"] for r in rs]
        series = {"fastconv": [], "PyTorch (best layout)": [], "NumPy im2col": []}
        for r in rs:
            lay, ms = best_fastconv(r)
            series["fastconv"].append(r["gflops"].get(lay) or 0)
            series["PyTorch (best layout)"].append(
                r["flops"] / r["torch_best_ms"] / 1e6 if r.get("torch_best_ms") else 0
            )
            series["NumPy im2col"].append(r["gflops"].get("numpy") or 0)
        width = 0.27
        for k, (label, vals) in enumerate(series.items()):
            ax.bar([i + (k - 1) * width for i in range(len(names))], vals, width, label=label)
        peak = rs[0]["peak_gflops"]
        ax.axhline(peak, color="k", linestyle="--", linewidth=1, label=f"measured peak {peak:.0f}")
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("GFLOP/s")
        ax.set_title(f"{net} conv {pass_}, batch {batch}, {threads} thread(s), {rs[0]['dtype']}", fontsize=10)
        ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None
