"""Build the C++ inner loop (``lstm_fused.cpp``) on first use, or say why it cannot be had.

The extension is compiled once per machine with torch.utils.cpp_extension into
``$LSTMLAB_CACHE`` (default ``~/.cache/lstmlab/torch-<version>-py<version>-cpu<hash>-src<hash>``,
one folder per source and flags, so that two checkouts never rebuild each other's) and
loaded as the ops ``torch.ops.lstmlab.fused_lstm_forward`` / ``fused_lstm_backward``. Without a
compiler, or if the build fails, a one-line warning is logged and the PyTorch loops of
``fused.py`` run instead.
``LSTMLAB_COMPILED=0`` switches the compiled loop off.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import platform
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor

log = logging.getLogger("lstmlab")

SOURCE = Path(__file__).with_name("lstm_fused.cpp")
# Not -ffast-math: it assumes no NaN and no inf, and the kernel must propagate both exactly as the
# reference loop does. The source declares glibc's vector exp itself, so -fno-math-errno is all
# GCC needs to vectorise the gate loops (-fno-trapping-math lets it if-convert the selects).
CFLAGS = ["-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math"]

_lock = threading.Lock()
_state: dict[str, object] = {}  # "ok": bool, "why": str once tried


def cpu_fingerprint() -> str:
    """A short hash of this CPU's model and instruction-set flags: the build uses -march=native,
    so a cache written on one processor must never be loaded on another (illegal instruction)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
        keep = [line for line in info.splitlines() if line.startswith(("model name", "flags"))]
        text = "\n".join(sorted(set(keep)))
    except OSError:
        text = ""
    text = text or platform.processor() or platform.machine()
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def source_fingerprint() -> str:
    """A short hash of the C++ source and the flags it is built with."""
    try:
        text = SOURCE.read_bytes()
    except OSError:
        text = b""
    return hashlib.sha256(text + " ".join(CFLAGS).encode()).hexdigest()[:12]


def cache_dir() -> Path:
    """Where the compiled extension lives: one folder per torch, Python, CPU and source."""
    root = os.environ.get("LSTMLAB_CACHE") or Path.home() / ".cache" / "lstmlab"
    python = f"{sys.version_info[0]}{sys.version_info[1]}"
    tag = (f"torch-{torch.__version__.replace('+', '-')}-py{python}-cpu{cpu_fingerprint()}"
           f"-src{source_fingerprint()}")
    return Path(root) / tag


def disabled() -> bool:
    """True when LSTMLAB_COMPILED=0 (or false/no/off) switches the compiled loop off."""
    return os.environ.get("LSTMLAB_COMPILED", "1").strip().lower() in ("0", "false", "no", "off")


@contextlib.contextmanager
def _build_lock(build_dir: Path) -> Iterator[None]:
    """Hold ``build_dir/build.flock`` (an flock, which the OS releases when its process dies)
    while torch builds or loads the extension there, and first remove torch's own ``lock`` file
    if one is left: torch waits, forever, for that file to go, and a build that was killed (Ctrl-C
    during the first compile, a timeout) leaves it behind. Under the flock no other lstmlab
    process is building, so such a file can only be stale."""
    try:
        import fcntl
    except ImportError:  # not POSIX: torch's lock alone
        yield
        return
    with open(build_dir / "build.flock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            stale = build_dir / "lock"
            if stale.exists():
                log.warning("lstmlab: removing %s, left by a kernel build that was interrupted",
                            stale)
                stale.unlink(missing_ok=True)
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build() -> None:
    if disabled():
        _state.update(ok=False, why="switched off by LSTMLAB_COMPILED=0")
        return
    try:
        from torch.utils import cpp_extension

        # ninja from pip sits next to the interpreter, which need not be on PATH
        bindir = os.path.dirname(sys.executable)
        if shutil.which("ninja") is None and os.path.exists(os.path.join(bindir, "ninja")):
            os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
        build_dir = cache_dir()
        build_dir.mkdir(parents=True, exist_ok=True)
        with _build_lock(build_dir):
            cpp_extension.load(name="lstmlab_fused", sources=[str(SOURCE)],
                               extra_cflags=CFLAGS, build_directory=str(build_dir),
                               is_python_module=False, verbose=False)
        torch.ops.lstmlab.fused_lstm_forward  # noqa: B018 - fails here if the ops are missing
        _state.update(ok=True, why="")
    except Exception as error:  # any failure means: use the fallback
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        _state.update(ok=False, why=f"build failed: {first}")
        log.warning("lstmlab: compiled LSTM kernel unavailable (%s); using the PyTorch loop",
                    _state["why"])


def compiled_ok() -> bool:
    """Build (once) and report whether the compiled ops are there."""
    if "ok" not in _state:
        with _lock:
            if "ok" not in _state:
                _build()
    return bool(_state["ok"])


def available(x: Tensor) -> bool:
    """Whether the compiled loop can run on tensors like ``x`` (CPU, float32/float64)."""
    return x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) \
        and compiled_ok()


def why_unavailable(x: Tensor) -> str:
    if x.device.type != "cpu":
        return f"it runs on the CPU only, got {x.device}"
    if x.dtype not in (torch.float32, torch.float64):
        return f"it computes float32 and float64, got {x.dtype}"
    compiled_ok()
    return str(_state.get("why") or "available")


def ops():
    """The namespace torch.ops.lstmlab (after a successful build)."""
    if not compiled_ok():
        raise RuntimeError(f"lstmlab: compiled LSTM kernel unavailable ({_state['why']})")
    return torch.ops.lstmlab
