"""Speed of lstmlab's layers against torch.nn's, every LSTM variant, forward and forward+backward.

    python benchmarks/kernels.py                 # the four shapes of the issue, 7 runs each
    python benchmarks/kernels.py --quick         # 3 runs, shapes 1 and 2 only: about a minute

One layer, one direction, float32, on the CPU (or --device cuda). For each shape every entry -
torch.nn.LSTM / GRU / RNN (the references) and lstmlab's NP, V, NIG, NFG, NOG, NIAF, NOAF, CIFG,
FGR LSTMs, GRU and RNN on their automatic path - is timed once per round, the rounds alternating
over the entries, and the median of the rounds is reported:

    fwd      forward under torch.no_grad()
    fwd+bwd  forward, then backward of a fixed random weighting of the output (params + input)

ratio is against the reference of the same kind (LSTMs against torch.nn.LSTM, GRU against nn.GRU,
RNN against nn.RNN). GFLOP/s counts the matrix products only (forward 2*T*B*G*H*(I+H), plus
2*T*B*(S*H)^2 for FGR; forward+backward three times that). The roofline is this machine's measured
float32 matrix-multiply rate: a large square product (peak) and the shape's per-step recurrent
product (B, H) x (H, 4H), which bounds every step of a recurrent layer. The machine is shared:
timings are noisy, medians of alternating runs are the defence.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import lstmlab  # noqa: E402
from lstmlab import VARIANTS  # noqa: E402
from lstmlab.kernels import build  # noqa: E402

SHAPES = [  # (B, T, I, H)
    (16, 200, 8, 32),
    (32, 100, 128, 256),
    (64, 100, 256, 512),
    (8, 1000, 2, 128),
]
REFERENCE = {"LSTM": "nn.LSTM", "GRU": "nn.GRU", "RNN": "nn.RNN"}


def make_entries(I: int, H: int, variants: list[str], device: str) -> dict[str, nn.Module]:
    """Name -> module: the torch.nn references first, then lstmlab's layers."""
    entries: dict[str, nn.Module] = {
        "nn.LSTM": nn.LSTM(I, H), "nn.GRU": nn.GRU(I, H), "nn.RNN": nn.RNN(I, H)}
    for v in variants:
        entries[f"LSTM {v}"] = lstmlab.LSTM(I, H, variant=v)
    entries["GRU"] = lstmlab.GRU(I, H)
    entries["RNN"] = lstmlab.RNN(I, H)
    return {name: m.to(device) for name, m in entries.items()}


def kind_of(name: str) -> str:
    return name.split()[0].removeprefix("nn.")


def matmul_flops(name: str, module: nn.Module, B: int, T: int, I: int, H: int) -> float:
    """Matrix-product FLOPs of one forward pass."""
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[kind_of(name)]
    spec = getattr(module, "spec", None)
    if spec is not None:
        gates = len(spec.gates)
    flops = 2.0 * T * B * gates * H * (I + H)
    if spec is not None and spec.gate_recurrence:
        flops += 2.0 * T * B * (len(spec.sigmoid_gates) * H) ** 2
    return flops


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_once(module: nn.Module, x: torch.Tensor, grad: torch.Tensor, backward: bool,
              device: str) -> float:
    """Seconds for one forward (no grad) or forward+backward."""
    if backward:
        module.zero_grad(set_to_none=True)
        x.grad = None
        sync(device)
        start = time.perf_counter()
        out = module(x)[0]
        out.backward(grad)
    else:
        sync(device)
        start = time.perf_counter()
        with torch.no_grad():
            module(x)
    sync(device)
    return time.perf_counter() - start


def matmul_rate(m: int, k: int, n: int, device: str, seconds: float = 0.3) -> float:
    """Measured GFLOP/s of (m, k) x (k, n) float32 products."""
    a = torch.randn(m, k, device=device)
    b = torch.randn(k, n, device=device)
    out = torch.empty(m, n, device=device)
    for _ in range(3):
        torch.mm(a, b, out=out)
    sync(device)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.mm(a, b, out=out)
        count += 1
    sync(device)
    return 2.0 * m * k * n * count / (time.perf_counter() - start) / 1e9


def bench_shape(shape: tuple[int, int, int, int], variants: list[str], runs: int, warmup: int,
                device: str, progress) -> tuple[list[dict], float]:
    B, T, I, H = shape
    torch.manual_seed(0)
    entries = make_entries(I, H, variants, device)
    x = torch.randn(T, B, I, device=device, requires_grad=True)
    grads = {name: torch.randn(T, B, H, device=device) for name in entries}
    times: dict[tuple[str, str], list[float]] = {}
    for mode, backward in (("fwd", False), ("fwd+bwd", True)):
        for _ in range(warmup):
            for name, module in entries.items():
                time_once(module, x, grads[name], backward, device)
        for run in range(runs):  # alternate: one run of every entry per round
            for name, module in entries.items():
                t = time_once(module, x, grads[name], backward, device)
                times.setdefault((name, mode), []).append(t)
            progress(f"B={B} T={T} I={I} H={H} {mode} round {run + 1}/{runs}")
    step_gemm = matmul_rate(B, H, 4 * H, device)
    rows = []
    for (name, mode), ts in times.items():
        ms = statistics.median(ts) * 1e3
        ref_times = times[(REFERENCE[kind_of(name)], mode)]
        ref_ms = statistics.median(ref_times) * 1e3
        flops = matmul_flops(name, entries[name], B, T, I, H) * (3 if mode == "fwd+bwd" else 1)
        module = entries[name]
        path = "torch.nn" if name.startswith("nn.") else \
            lstmlab.kernels.choose(module.kernel, getattr(module, "spec", None), False)[0]
        if path == "fused":
            path += " (C++)" if build.available(x) else " (PyTorch)"
        rows.append({"shape": {"B": B, "T": T, "I": I, "H": H}, "name": name, "mode": mode,
                     "path": path, "reference": REFERENCE[kind_of(name)], "ms": ms,
                     "ratio": ms / ref_ms, "gflops": flops / (ms / 1e3) / 1e9,
                     "min_ms": min(ts) * 1e3, "ratio_of_min": min(ts) / min(ref_times),
                     "runs_ms": [t * 1e3 for t in ts]})
    return rows, step_gemm


def print_table(rows: list[dict], step_gemm: dict, peak: float) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # plain text
        Console = None  # noqa: N806
    for shape_key, rate in step_gemm.items():
        B, T, I, H = shape_key
        title = (f"B={B} T={T} I={I} H={H}  (matmul roofline: peak {peak:.0f} GFLOP/s, "
                 f"per-step ({B}x{H})x({H}x{4 * H}) {rate:.0f} GFLOP/s)")
        sel = [r for r in rows if tuple(r["shape"].values()) == shape_key]
        names = list(dict.fromkeys(r["name"] for r in sel))
        by = {(r["name"], r["mode"]): r for r in sel}
        header = ["layer", "path", "fwd ms", "ratio", "GFLOP/s", "fwd+bwd ms", "ratio", "GFLOP/s"]
        lines = []
        for name in names:
            f, fb = by[(name, "fwd")], by[(name, "fwd+bwd")]
            lines.append([name, f["path"], f"{f['ms']:.2f}", f"{f['ratio']:.2f}",
                          f"{f['gflops']:.1f}", f"{fb['ms']:.2f}", f"{fb['ratio']:.2f}",
                          f"{fb['gflops']:.1f}"])
        if Console is not None:
            table = Table(title=title)
            for h in header:
                table.add_column(h, justify="left" if h in ("layer", "path") else "right")
            for line in lines:
                table.add_row(*line)
            Console(width=120).print(table)
        else:
            print(title)
            for line in [header, *lines]:
                print("  ".join(f"{c:>12}" for c in line))


def markdown(rows: list[dict], step_gemm: dict, peak: float) -> str:
    """The fwd+bwd / fwd table in Markdown, one block per shape (for the README)."""
    out = []
    for shape_key, rate in step_gemm.items():
        B, T, I, H = shape_key
        out.append(f"\n**B={B}, T={T}, I={I}, H={H}** (matmul peak {peak:.0f} GFLOP/s, "
                   f"per-step product {rate:.0f} GFLOP/s)\n")
        out.append("| layer | path | fwd ms | ratio | fwd+bwd ms | ratio | GFLOP/s (fwd+bwd) |")
        out.append("|---|---|---:|---:|---:|---:|---:|")
        sel = {(r["name"], r["mode"]): r for r in rows if tuple(r["shape"].values()) == shape_key}
        for name in dict.fromkeys(n for n, _ in sel):
            f, fb = sel[(name, "fwd")], sel[(name, "fwd+bwd")]
            out.append(f"| {name} | {f['path']} | {f['ms']:.2f} | {f['ratio']:.2f} | "
                       f"{fb['ms']:.2f} | {fb['ratio']:.2f} | {fb['gflops']:.1f} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", default="1,2,3,4",
                        help="which shapes (1-based, comma-separated) of " + str(SHAPES))
    parser.add_argument("--runs", type=int, default=7, help="timed rounds per entry (median)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="LSTM variants, comma-separated (default: all nine)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: as is)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="3 runs of shapes 1 and 2")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "kernels.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.shapes = 3, "1,2"
    if args.threads:
        torch.set_num_threads(args.threads)
    shapes = [SHAPES[int(s) - 1] for s in args.shapes.split(",")]
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]

    compiled = build.available(torch.zeros(1, device=args.device))  # build before timing
    peak = matmul_rate(1024, 1024, 1024, args.device, seconds=1.0)
    how = {"torch": torch.__version__, "python": platform.python_version(),
           "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
           "threads": torch.get_num_threads(), "device": args.device, "dtype": "float32",
           "runs": args.runs, "warmup": args.warmup, "statistic": "median of alternating runs",
           "layers": 1, "directions": 1, "compiled_kernel": compiled,
           "matmul_peak_gflops": peak}
    print(f"lstmlab kernels benchmark: torch {how['torch']}, {how['threads']} threads on "
          f"{how['cpus']} CPUs, {args.device}, float32, one layer, one direction")
    print(f"  {args.runs} timed runs (+{args.warmup} warm-up) per entry, alternating over "
          f"entries, median reported; compiled fused loop: {'yes' if compiled else 'no'}")
    print(f"  shapes (B, T, I, H): {shapes}; variants: {', '.join(variants)}")
    print(f"  measured matmul roofline: {peak:.1f} GFLOP/s (1024^3 float32)")

    rows: list[dict] = []
    step_gemm: dict = {}
    started = time.perf_counter()

    def progress(msg: str) -> None:
        print(f"  [{time.perf_counter() - started:6.0f}s] {msg}", file=sys.stderr, flush=True)

    for shape in shapes:
        shape_rows, rate = bench_shape(shape, variants, args.runs, args.warmup, args.device,
                                       progress)
        rows += shape_rows
        step_gemm[shape] = rate
    print_table(rows, step_gemm, peak)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"settings": how, "shapes": [dict(zip("BTIH", s, strict=True)) for s in shapes],
              "step_matmul_gflops": {f"B={s[0]} T={s[1]} I={s[2]} H={s[3]}": r
                                     for s, r in step_gemm.items()},
              "results": rows, "markdown": markdown(rows, step_gemm, peak)}
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(out)
    print(f"wrote {out} ({time.perf_counter() - started:.0f}s)")


if __name__ == "__main__":
    main()
