"""PyTorch's own RNN tests and its word-language-model example, run against lstmlab's layers.

    python benchmarks/torch_suite.py --test-nn PYTORCH/test/test_nn.py
    python benchmarks/torch_suite.py --example EXAMPLES/word_language_model [--data DIR]
    python benchmarks/torch_suite.py --test-nn ... --example ...    # both

Neither file ships with lstmlab: they are read from the paths given (a pytorch/pytorch checkout's
test/test_nn.py, a pytorch/examples checkout's word_language_model folder), never copied.

--test-nn imports the file and selects its RNN tests: every test of its classes (TestNN, and the
CPU instantiation of TestNNDeviceType) whose name contains rnn, lstm or gru, or whose body builds
nn.RNN / nn.GRU / nn.LSTM. They run with unittest twice in this process: with torch.nn's classes,
then with torch.nn.RNN, GRU and LSTM replaced for the run by lstmlab's (the LSTM with
forget_bias=0, which gives torch.nn's initialisation; with --cells also RNNCell, GRUCell and
LSTMCell; with --test-variant V the LSTM is that variant, so the tests that check a layer against
itself - packed against per-sequence runs, gradcheck, retained graphs - drive lstmlab's own
kernels). The replacement builds genuine lstmlab modules, and ``isinstance(m, nn.LSTM)`` inside a
test asks lstmlab's class. Printed: passed / failed / skipped side by side, and every failure with
its exception and the test line that raised it.

--example runs the example's own, unmodified main.py (runpy, a fresh process per run, one thread)
on the first --lines lines of each split of its data for --epochs, three times with the same seed:
torch.nn.LSTM, lstmlab.LSTM (NP, forget_bias=0) and lstmlab.LSTM(variant=--variant). Every loss
main.py computes is recorded (nn.NLLLoss replaced by a subclass that notes each value, in every
run alike) and compared exactly; main.py's own torch.save of the whole model and its closing
torch.load (weights_only by default, with the example's own allow-list) must run.

Figures go to benchmarks/results/torch_suite.json (each part updates its own key).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import json
import os
import platform
import re
import runpy
import subprocess
import sys
import tempfile
import time
import traceback
import unittest
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import lstmlab  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "torch_suite.json"
SIDES = ("torch.nn", "lstmlab")

# ---------------------------------------------------------------------------------------------
# The swap: torch.nn's classes replaced by stand-ins that build lstmlab's modules
# ---------------------------------------------------------------------------------------------


class _StandIn(type):
    """Metaclass of a stand-in for a torch.nn class: calling the stand-in builds ``target`` (with
    ``defaults`` under the caller's keywords); isinstance / issubclass against it ask ``target``."""

    built: Counter[str] = Counter()  # modules built through a stand-in: proof the swap took

    def __call__(cls, *args, **kwargs):
        _StandIn.built[cls.__name__] += 1
        return cls.target(*args, **{**cls.defaults, **kwargs})

    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, cls.target)

    def __subclasscheck__(cls, sub) -> bool:
        return issubclass(sub, cls.target)


def stand_in(name: str, target: type, **defaults) -> type:
    return _StandIn(name, (), {"target": target, "defaults": defaults})


@contextlib.contextmanager
def swapped(variant: str = "NP", cells: bool = False) -> Iterator[None]:
    """torch.nn.RNN / GRU / LSTM (and with ``cells`` the three cells) are lstmlab's inside.
    lstmlab's to_torch() and TorchScript path look torch.nn's classes up when called, so they
    would get the stand-ins here: the tests selected use neither."""
    swaps = {"RNN": stand_in("RNN", lstmlab.RNN), "GRU": stand_in("GRU", lstmlab.GRU),
             "LSTM": stand_in("LSTM", lstmlab.LSTM, forget_bias=0.0, variant=variant)}
    if cells:
        swaps |= {"RNNCell": stand_in("RNNCell", lstmlab.RNNCell),
                  "GRUCell": stand_in("GRUCell", lstmlab.GRUCell),
                  "LSTMCell": stand_in("LSTMCell", lstmlab.LSTMCell, forget_bias=0.0)}
    saved = {name: getattr(nn, name) for name in swaps}
    try:
        for name, cls in swaps.items():
            setattr(nn, name, cls)
        yield
    finally:
        for name, cls in saved.items():
            setattr(nn, name, cls)


# ---------------------------------------------------------------------------------------------
# Part 1: test_nn.py's RNN tests
# ---------------------------------------------------------------------------------------------

NAME = re.compile(r"rnn|lstm|gru", re.IGNORECASE)
BODY = re.compile(r"\bnn\.(RNN|GRU|LSTM)\b")
OTHER_DEVICE = re.compile(r"(CUDA|MPS|XPU|META|LAZY|HPU|PRIVATEUSE1)$")


def load_test_file(path: Path) -> ModuleType:
    """Import PyTorch's test file by path (its own imports must exist in this torch)."""
    spec = importlib.util.spec_from_file_location("torch_test_nn", path)
    module = importlib.util.module_from_spec(spec)
    argv, sys.argv = sys.argv, [str(path)]  # older torch parsed sys.argv on import
    try:
        spec.loader.exec_module(module)
    except ImportError as e:
        raise SystemExit(f"{path} needs something this torch ({torch.__version__}) lacks: "
                         f"{e}") from e
    finally:
        sys.argv = argv
    if hasattr(module, "TestCase"):  # as the file's __main__ block sets it
        module.TestCase._default_dtype_check_enabled = True
    return module


def _body(text: str, method: str) -> str:
    """The source of ``method`` in the file's text; a generated name (test_x_cpu_float64, a
    parametrised test_x_mode) is traced to the longest ``def`` name it starts with."""
    parts = method.split("_")
    for n in range(len(parts), 1, -1):
        found = re.search(rf"\n    def {'_'.join(parts[:n])}\(.*?(?=\n    \S|\nclass |\Z)", text,
                          re.DOTALL)
        if found:
            return found.group(0)
    return ""


def select_rnn_tests(module: ModuleType, path: Path) -> list[tuple[type, str, str]]:
    """(class, method, why) for each RNN test on the CPU; why is "name" or "body"."""
    text = path.read_text(encoding="utf8")
    found = []
    for cls in vars(module).values():
        if not (isinstance(cls, type) and issubclass(cls, unittest.TestCase)
                and cls.__module__ == module.__name__ and not OTHER_DEVICE.search(cls.__name__)):
            continue
        for method in unittest.TestLoader().getTestCaseNames(cls):
            if NAME.search(method):
                found.append((cls, method, "name"))
            elif BODY.search(_body(text, method)):
                found.append((cls, method, "body"))
    return found


class _Outcomes(unittest.TestResult):
    """Each test's outcome and, for a failure, the exception and the test-file line."""

    def __init__(self, test_file: Path) -> None:
        super().__init__()
        self.test_file = str(test_file)
        self.outcomes: dict[str, dict] = {}

    def _note(self, test, outcome: str, reason: str = "", where: str = "") -> None:
        key = f"{type(test).__name__}.{getattr(test, '_testMethodName', str(test))}"
        if self.outcomes.get(key, {}).get("outcome") in ("failed", "error"):
            return  # a subtest failed first: keep that
        self.outcomes[key] = {"outcome": outcome, "reason": reason, "where": where}

    def _explain(self, err) -> tuple[str, str]:
        kind, value, tb = err
        message = " ".join(str(value).split())
        reason = f"{kind.__name__}: {message}"[:400]
        frames = [f for f in traceback.extract_tb(tb) if f.filename == self.test_file]
        where = f"line {frames[-1].lineno}: {frames[-1].line}" if frames else ""
        return reason, where

    def addSuccess(self, test) -> None:
        self._note(test, "passed")

    def addFailure(self, test, err) -> None:
        self._note(test, "failed", *self._explain(err))

    def addError(self, test, err) -> None:
        self._note(test, "error", *self._explain(err))

    def addSkip(self, test, reason) -> None:
        self._note(test, "skipped", reason)

    def addExpectedFailure(self, test, err) -> None:
        self._note(test, "expected failure", *self._explain(err))

    def addUnexpectedSuccess(self, test) -> None:
        self._note(test, "unexpected success")

    def addSubTest(self, test, subtest, err) -> None:
        if err is not None:
            self._note(test, "failed", *self._explain(err))


def run_selected(selected: list[tuple[type, str, str]], test_file: Path) -> dict[str, dict]:
    result = _Outcomes(test_file)
    unittest.TestSuite(cls(method) for cls, method, _ in selected).run(result)
    return result.outcomes


def count(outcomes: dict[str, dict]) -> dict[str, int]:
    counts = {"passed": 0, "failed": 0, "skipped": 0, "expected failure": 0,
              "unexpected success": 0}
    for o in outcomes.values():
        counts["failed" if o["outcome"] == "error" else o["outcome"]] += 1
    return counts


def test_nn_part(path: Path, cells: bool, variant: str) -> dict:
    module = load_test_file(path)
    selected = select_rnn_tests(module, path)
    if not selected:
        raise SystemExit(f"{path}: no RNN tests found (classes TestNN / TestNNDeviceType?)")
    runs, seconds, built = {}, {}, {}
    for side in SIDES:
        start = time.perf_counter()
        _StandIn.built.clear()
        with swapped(variant, cells) if side == "lstmlab" else contextlib.nullcontext():
            runs[side] = run_selected(selected, path)
        seconds[side] = round(time.perf_counter() - start, 1)
        built[side] = dict(sorted(_StandIn.built.items()))
    why = {f"{cls.__name__}.{method}": w for cls, method, w in selected}
    tests = {key: {"selected_by": why[key], **{side: runs[side][key]["outcome"] for side in SIDES}}
             for key in why}
    failures = {side: [{"test": key, **{k: v for k, v in o.items() if k != "outcome"}}
                       for key, o in runs[side].items() if o["outcome"] in ("failed", "error")]
                for side in SIDES}
    skips = sorted({o["reason"] for o in runs["torch.nn"].values() if o["outcome"] == "skipped"})
    return {
        "file": str(path),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "swapped": f"RNN, GRU, LSTM (variant {variant})"
                   + (", RNNCell, GRUCell, LSTMCell" if cells else ""),
        "selected": len(selected),
        "selected_by_name": sum(w == "name" for *_, w in selected),
        "selected_by_body": sum(w == "body" for *_, w in selected),
        "counts": {side: count(runs[side]) for side in SIDES},
        "seconds": seconds,
        "lstmlab_modules_built": built["lstmlab"],
        "skip_reasons": skips,
        "failures": failures,
        "tests": tests,
    }


def print_test_nn(r: dict) -> None:
    print(f"\nPyTorch test_nn.py RNN tests: {r['file']}")
    print(f"  {r['selected']} selected ({r['selected_by_name']} by name rnn/lstm/gru, "
          f"{r['selected_by_body']} by a body building nn.RNN/GRU/LSTM); swapped: {r['swapped']}")
    print(f"  {'':22}{'torch.nn':>10}{'lstmlab':>10}")
    for outcome in r["counts"]["torch.nn"]:
        row = [r["counts"][side][outcome] for side in SIDES]
        if any(row) or outcome in ("passed", "failed", "skipped"):
            print(f"  {outcome:22}{row[0]:>10}{row[1]:>10}")
    print(f"  {'seconds':22}{r['seconds']['torch.nn']:>10}{r['seconds']['lstmlab']:>10}")
    print(f"  lstmlab modules the tests built: {r['lstmlab_modules_built']}")
    for side in SIDES:
        for f in r["failures"][side]:
            print(f"  FAILED with {side}: {f['test']}\n      {f['reason']}\n      {f['where']}")
    differ = [k for k, t in r["tests"].items() if t["torch.nn"] != t["lstmlab"]]
    print(f"  tests whose outcome differs between the two: {len(differ)}")
    print(f"  skipped (both sides) because: {'; '.join(r['skip_reasons']) or '-'}")


# ---------------------------------------------------------------------------------------------
# Part 2: pytorch/examples word_language_model
# ---------------------------------------------------------------------------------------------

TRAIN_LINE = re.compile(r"\|\s*epoch\s+(\d+)\s*\|\s*(\d+)/\s*\d+ batches.*loss\s+([\d.]+)\s*\|"
                        r"\s*ppl\s+([\d.]+)")
VALID_LINE = re.compile(r"end of epoch\s+(\d+).*valid loss\s+([\d.]+)\s*\|\s*valid ppl\s+([\d.]+)")
TEST_LINE = re.compile(r"End of training \| test loss\s+([\d.]+)\s*\|\s*test ppl\s+([\d.]+)")


def _child(main_py: str, variant: str, record: str, argv: list[str]) -> None:
    """One run of main.py in this (fresh) process: variant "torch" keeps torch.nn.LSTM."""
    losses: dict[str, list[float]] = {"train": [], "eval": []}

    class RecordingNLLLoss(nn.NLLLoss):
        def forward(self, input, target):
            loss = super().forward(input, target)
            losses["train" if torch.is_grad_enabled() else "eval"].append(loss.item())
            return loss

    nn.NLLLoss = RecordingNLLLoss
    sys.path.insert(0, str(Path(main_py).parent))  # main.py imports its data and model
    sys.argv = [main_py, *argv]
    out = {"error": None, "loaded_rnn": None}
    weights_only = getattr(torch.serialization, "_default_to_weights_only", None)
    out["torch_load_default_weights_only"] = weights_only(None) if weights_only else None
    try:
        with contextlib.nullcontext() if variant == "torch" else swapped(variant):
            scope = runpy.run_path(main_py, run_name="__main__")
        rnn = scope["model"].rnn  # the model main.py loaded back with torch.load
        out["loaded_rnn"] = f"{type(rnn).__module__}.{type(rnn).__qualname__}" + (
            f"(variant={rnn.variant})" if hasattr(rnn, "variant") else "")
        out["test_loss"] = scope["test_loss"]
    except (Exception, SystemExit) as e:  # main.py may exit through argparse
        out["error"] = f"{type(e).__name__}: {e}"
        traceback.print_exc()
    out["losses"] = losses
    Path(record).write_text(json.dumps(out))


def _subset(source: Path, target: Path, lines: int) -> dict[str, int]:
    target.mkdir(parents=True)
    sizes = {}
    for split in ("train", "valid", "test"):
        with open(source / f"{split}.txt", encoding="utf8") as f:
            kept = [line for _, line in zip(range(lines), f, strict=False)]
        (target / f"{split}.txt").write_text("".join(kept), encoding="utf8")
        sizes[split] = sum(len(line.split()) + 1 for line in kept)  # tokens with <eos>
    return sizes


def _parse(stdout: str) -> dict:
    return {
        "train": [m.groups() for m in TRAIN_LINE.finditer(stdout)],
        "valid": [m.groups() for m in VALID_LINE.finditer(stdout)],
        "test": [m.groups() for m in TEST_LINE.finditer(stdout)],
    }


def example_part(folder: Path, data: Path | None, lines: int, epochs: int, size: int,
                 log_interval: int, variant: str) -> dict:
    main_py = folder / "main.py"
    data = data or folder / "data" / "wikitext-2"
    missing = [s for s in ("train", "valid", "test") if not (data / f"{s}.txt").exists()]
    if not main_py.exists() or missing:
        raise SystemExit(f"{main_py if not main_py.exists() else data} lacks "
                         f"{'main.py' if not main_py.exists() else missing}; give --data DIR "
                         "with train.txt, valid.txt and test.txt")
    runs = {"torch.nn": "torch", "lstmlab": "NP", f"lstmlab {variant}": variant}
    result: dict = {"main_py": str(main_py), "data": str(data), "lines_per_split": lines}
    with tempfile.TemporaryDirectory() as tmp:
        result["tokens"] = _subset(data, Path(tmp) / "data", lines)
        args = ["--data", str(Path(tmp) / "data"), "--epochs", str(epochs), "--emsize", str(size),
                "--nhid", str(size), "--nlayers", "2", "--log-interval", str(log_interval),
                "--seed", "1111"]
        result["main_py_args"] = args[2:]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
        for name, v in runs.items():
            record, save = Path(tmp) / f"{v}.json", Path(tmp) / f"{v}.pt"
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, __file__, "_child", str(main_py), v,
                                   str(record), *args, "--save", str(save)],
                                  capture_output=True, text=True, env=env, timeout=3600)
            out = json.loads(record.read_text()) if record.exists() else {
                "error": f"no record; exit {proc.returncode}: {proc.stderr[-2000:]}"}
            out |= {"seconds": round(time.perf_counter() - start, 1),
                    "printed": _parse(proc.stdout), "saved_file": save.exists()}
            if out["error"]:
                out["stderr_tail"] = proc.stderr[-3000:]
            result[name] = out
            print(f"  {name}: {out['seconds']} s, error: {out['error']}", flush=True)
    ref, ours = result["torch.nn"], result["lstmlab"]
    same = {part: ref["losses"][part] == ours["losses"][part] for part in ("train", "eval")}
    diffs = [abs(a - b) for part in ("train", "eval")
             for a, b in zip(ref["losses"][part], ours["losses"][part], strict=False)]
    result["identical"] = {
        "every_loss_bitwise": same["train"] and same["eval"] and not ref["error"],
        "train_losses_compared": len(ref["losses"]["train"]),
        "eval_losses_compared": len(ref["losses"]["eval"]),
        "max_abs_difference": max(diffs) if diffs else None,
        "printed_lines_equal": ref["printed"] == ours["printed"],
    }
    return result


def print_example(r: dict, variant: str) -> None:
    print(f"\npytorch/examples word_language_model: {r['main_py']}")
    print(f"  data: first {r['lines_per_split']} lines of each split of {r['data']} "
          f"(tokens {r['tokens']}); main.py {' '.join(r['main_py_args'])}")
    names = ["torch.nn", "lstmlab", f"lstmlab {variant}"]
    print(f"  {'':34}" + "".join(f"{n:>18}" for n in names))
    rows = [("printed train losses", lambda o: " ".join(t[2] for t in o["printed"]["train"])),
            ("valid loss per epoch", lambda o: " ".join(v[1] for v in o["printed"]["valid"])),
            ("test loss (printed)", lambda o: " ".join(t[0] for t in o["printed"]["test"])),
            ("test loss (exact)", lambda o: f"{o.get('test_loss', float('nan')):.10f}"),
            ("losses recorded (train/eval)",
             lambda o: f"{len(o['losses']['train'])}/{len(o['losses']['eval'])}"),
            ("torch.save file written", lambda o: str(o["saved_file"])),
            ("module after main.py's torch.load", lambda o: o["loaded_rnn"] or "-"),
            ("error", lambda o: o["error"] or "-"),
            ("seconds", lambda o: str(o["seconds"]))]
    for label, get in rows:
        cells = [get(r[n]) for n in names]
        if max(len(c) for c in cells) > 16:
            print(f"  {label}:")
            for n, c in zip(names, cells, strict=True):
                print(f"      {n:>16}: {c}")
        else:
            print(f"  {label:34}" + "".join(f"{c:>18}" for c in cells))
    i = r["identical"]
    print(f"  torch.nn vs lstmlab: every loss bitwise equal: {i['every_loss_bitwise']} "
          f"({i['train_losses_compared']} train, {i['eval_losses_compared']} eval; max |diff| "
          f"{i['max_abs_difference']}); printed lines equal: {i['printed_lines_equal']}")
    print(f"  torch.load default weights_only: "
          f"{r['lstmlab']['torch_load_default_weights_only']}")


# ---------------------------------------------------------------------------------------------


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":  # internal: one run of main.py
        _child(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--test-nn", type=Path, help="PyTorch's test/test_nn.py")
    parser.add_argument("--cells", action="store_true",
                        help="with --test-nn: also swap RNNCell, GRUCell, LSTMCell")
    parser.add_argument("--test-variant", default="NP",
                        help="with --test-nn: the LSTM variant swapped in (default NP)")
    parser.add_argument("--example", type=Path, help="pytorch/examples word_language_model")
    parser.add_argument("--data", type=Path,
                        help="folder with train/valid/test.txt (default: the example's wikitext-2)")
    parser.add_argument("--lines", type=int, default=4000, help="lines kept of each split")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--size", type=int, default=64, help="--emsize and --nhid of main.py")
    parser.add_argument("--log-interval", type=int, default=20)
    parser.add_argument("--variant", default="CIFG", help="the third run's LSTM variant")
    parser.add_argument("--note", default="",
                        help="where the files came from (kept in the JSON beside the figures)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not (args.test_nn or args.example):
        parser.error("give --test-nn and/or --example")
    torch.set_num_threads(1)
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    results |= {"torch": torch.__version__, "python": platform.python_version(),
                "machine": platform.machine(), "lstmlab": lstmlab.__version__}
    if args.test_nn:
        key = "test_nn" + "_cells" * args.cells + (
            f"_{args.test_variant}" if args.test_variant != "NP" else "")
        results[key] = test_nn_part(args.test_nn.resolve(), args.cells, args.test_variant)
        results[key]["note"] = args.note
        results[key]["command"] = " ".join(["python benchmarks/torch_suite.py", "--test-nn",
                                            "PYTORCH/test/test_nn.py"] + ["--cells"] * args.cells
                                           + ["--test-variant", args.test_variant])
        print_test_nn(results[key])
    if args.example:
        print("\nrunning main.py three times ...", flush=True)
        results["example"] = example_part(args.example.resolve(),
                                          args.data.resolve() if args.data else None, args.lines,
                                          args.epochs, args.size, args.log_interval, args.variant)
        results["example"]["note"] = args.note
        results["example"]["command"] = (
            f"python benchmarks/torch_suite.py --example EXAMPLES/word_language_model "
            f"--lines {args.lines} --epochs {args.epochs} --size {args.size} "
            f"--log-interval {args.log_interval} --variant {args.variant}"
            + (" --data DATA" if args.data else ""))
        print_example(results["example"], args.variant)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
