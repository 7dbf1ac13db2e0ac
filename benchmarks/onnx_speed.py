"""Inference speed of an exported ONNX model in onnxruntime beside lstmlab's own, same run.

The model: a character language model as for Tiny Shakespeare (vocabulary 65, embedding 512,
2 layers of 512 units), weights drawn from seed 0 (speed does not depend on them). One call
reads 100 steps of one sequence (batch 1) and returns the 100 x 65 logits and the state.

    lstmlab       LanguageModel.forward under torch.no_grad, eval mode, torch on 1 thread (the
                  layer's default path: PyTorch's native kernel for lstm = NP, lstmlab's fused
                  kernel for the other variants)
    onnxruntime   the file from lstmlab.export.to_onnx, CPUExecutionProvider, 1 intra-op thread
                  and onnxruntime's default thread count

Each runs ``--repeats`` calls per round after a warm-up, in alternating rounds (a busy machine
slows all alike); the figure is the median call time in milliseconds. The largest absolute
difference of the outputs (logits, h_n, c_n) from lstmlab's is re-checked on the same input,
and both are compared with the exact answer (lstmlab in float64): where the cell state grows
(NFG: c_t = c_{t-1} + i z reaches tens in 100 steps) float32 itself is off by more than 1e-5,
in lstmlab as in onnxruntime. Cells: lstm (NP, the
ONNX LSTM operator), lstm:V (peepholes, the LSTM operator), lstm:NFG (a Scan graph).

    .venv/bin/python benchmarks/onnx_speed.py                       # writes results/onnx_speed.json
    .venv/bin/python benchmarks/onnx_speed.py --repeats 2 --rounds 1 --cells lstm   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from lm_common import RESULTS, ROOT, machine
from rich.console import Console
from rich.table import Table

from lstmlab.export.onnx import to_onnx
from lstmlab.models.language import LanguageModel

VOCAB, HIDDEN, LAYERS, STEPS, BATCH = 65, 512, 2, 100, 1


def session(path: Path, threads: int | None) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def timed(call, repeats: int) -> list[float]:
    """Milliseconds of each of ``repeats`` calls."""
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        out.append((time.perf_counter() - start) * 1000)
    return out


def measure(cell: str, folder: Path, rounds: int, repeats: int) -> dict:
    torch.manual_seed(0)
    model = LanguageModel(VOCAB, cell, HIDDEN, LAYERS).eval()
    path = to_onnx(model, folder / f"{cell.replace(':', '_')}.onnx", force=True)
    ids = torch.randint(0, VOCAB, (STEPS, BATCH), generator=torch.Generator().manual_seed(1))
    feed = {"inputs": ids.numpy()}
    runners = {"onnxruntime 1 thread": session(path, 1),
               "onnxruntime default": session(path, None)}

    def lstmlab_call():
        with torch.no_grad():
            return model(ids)

    expected = _outputs(lstmlab_call())
    with torch.no_grad():  # the exact answer, to tell export errors from float32's own
        exact = _outputs(model.double()(ids))
    model.float()
    got = runners["onnxruntime 1 thread"].run(None, feed)
    calls = {"lstmlab 1 thread": lstmlab_call}
    calls |= {name: (lambda s=s: s.run(None, feed)) for name, s in runners.items()}
    times: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():  # warm-up
        timed(call, 3)
    for _ in range(rounds):
        for name, call in calls.items():
            times[name] += timed(call, repeats)
    medians = {name: statistics.median(values) for name, values in times.items()}
    return {"cell": cell, "onnx_operator": _operator(path), "file_bytes": path.stat().st_size,
            "max_abs_difference": _worst(got, expected),
            "onnx_vs_float64": _worst(got, exact), "lstmlab_vs_float64": _worst(expected, exact),
            "median_ms": medians,
            "calls_measured": rounds * repeats}


def _outputs(result) -> list[np.ndarray]:
    logits, (h, c) = result
    return [t.float().numpy() for t in (logits, h, c)]


def _worst(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """The largest absolute difference over the outputs (logits, h_n, c_n)."""
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b, strict=True))


def _operator(path: Path) -> str:
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    return ", ".join(json.loads(meta["lstmlab.recurrent"]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", nargs="+", default=["lstm", "lstm:V", "lstm:NFG"])
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    p.add_argument("--repeats", type=int, default=10, help="calls per round (default 10)")
    p.add_argument("--no-write", action="store_true", help="do not write the results file")
    args = p.parse_args()
    torch.set_num_threads(1)

    results = []
    with tempfile.TemporaryDirectory() as folder:
        for cell in args.cells:
            results.append(measure(cell, Path(folder), args.rounds, args.repeats))

    table = Table(title=f"{LAYERS}x{HIDDEN} char LM (V={VOCAB}), batch {BATCH}, {STEPS} steps: "
                        "median ms per call")
    names = list(results[0]["median_ms"])
    for column in ["cell", "ONNX op", *names, "|onnx - lstmlab|", "|onnx - exact|",
                   "|lstmlab - exact|"]:
        table.add_column(column, justify="left" if column in ("cell", "ONNX op") else "right")
    for r in results:
        table.add_row(r["cell"], r["onnx_operator"], *(f"{r['median_ms'][n]:.2f}" for n in names),
                      *(f"{r[k]:.1e}" for k in ("max_abs_difference", "onnx_vs_float64",
                                                 "lstmlab_vs_float64")))
    Console(width=140).print(table)
    if args.no_write:
        return
    document = {"benchmark": "onnx_speed",
                "command": " ".join(shlex.quote(a) for a in sys.argv),
                "finished": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(),
                "onnxruntime": onnxruntime.__version__,
                "model": {"vocab": VOCAB, "hidden": HIDDEN, "layers": LAYERS,
                          "embedding": HIDDEN},
                "steps": STEPS, "batch": BATCH, "rounds": args.rounds, "repeats": args.repeats,
                "results": results}
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "onnx_speed.json"
    out.write_text(json.dumps(document, indent=1) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
