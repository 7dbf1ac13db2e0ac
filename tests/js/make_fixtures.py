"""Fixtures of the JavaScript tests: small exported models with PyTorch's outputs and traces.

    python tests/js/make_fixtures.py            # rewrites tests/js/fixtures/

For every LSTM variant (and some switch combinations, stacks, both directions, a projection, no
bias), the GRU, the RNN (tanh, relu) and each exported model kind, a folder NAME/ holds what
``lstmlab.export.web`` writes (manifest.json, weights.bin) and expected.json: the inputs, and
the outputs (and traces) that lstmlab's reference loop computes on them in float64 from the same
float32 weights. The gradient fixtures (grad_*.json) hold a tiny LSTM / RNN in train.js's layout,
a fixed sequence, and PyTorch's autograd gradients of the loss. tests/test_export_web.py
regenerates everything into a temporary folder and compares, so the fixtures cannot go stale.
"""

from __future__ import annotations

import copy
import json
import math
import sys
from pathlib import Path

import torch
from torch import nn

import lstmlab
from lstmlab import kernels
from lstmlab.export.web import manifest_and_weights
from lstmlab.layers import tracing
from lstmlab.models.classifier import TextClassifier
from lstmlab.models.language import LanguageModel
from lstmlab.models.music import MusicModel
from lstmlab.models.sequence import SequenceModel
from lstmlab.models.tagger import SequenceTagger
from lstmlab.tasks.text import Vocabulary
from lstmlab.tasks.words import WordVocabulary

HERE = Path(__file__).parent
I, H, T = 3, 4, 5  # inputs, hidden units, steps of the layer fixtures


def _list(tensor: torch.Tensor) -> list:
    return tensor.detach().to(torch.float64).tolist()


def _perturb(module: nn.Module, seed: int) -> None:
    """Weights large enough that gates saturate differently (init alone keeps them near 0.5)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.4 * torch.randn(p.shape, generator=g))


def _reference(module: nn.Module) -> nn.Module:
    """A float64 copy of ``module`` with its float32 weights: the exact value JS should get."""
    return copy.deepcopy(module).to(torch.float32).to(torch.float64).eval()


def _trace(trace) -> list[dict]:
    out = []
    for k in range(len(trace.forward)):
        entry = {"forward": {n: _list(v) for n, v in trace.forward[k].items()}}
        if trace.reverse is not None:
            entry["reverse"] = {n: _list(v) for n, v in trace.reverse[k].items()}
        out.append(entry)
    return out


def _write(root: Path, name: str, module: nn.Module, expected: dict, extra: dict | None = None):
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    manifest, weights = manifest_and_weights(module, extra)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    (folder / "weights.bin").write_bytes(weights)
    (folder / "expected.json").write_text(json.dumps(expected) + "\n")


LAYERS = {  # name: (constructor, kwargs)
    **{f"lstm_{v}": (lstmlab.LSTM, {"variant": v}) for v in lstmlab.VARIANTS},
    "lstm_NFG+NP": (lstmlab.LSTM, {"variant": "NFG+NP"}),
    "lstm_CIFG+FGR": (lstmlab.LSTM, {"variant": "CIFG+FGR"}),
    "lstm_NIG+NOG+FGR": (lstmlab.LSTM, {"variant": "NIG+NOG+FGR"}),
    "lstm_NIAF+NOAF+NP": (lstmlab.LSTM, {"variant": "NIAF+NOAF+NP"}),
    "lstm_V_2layers_bidir": (lstmlab.LSTM, {"variant": "V", "num_layers": 2,
                                            "bidirectional": True}),
    "lstm_FGR_2layers_bidir": (lstmlab.LSTM, {"variant": "FGR", "num_layers": 2,
                                              "bidirectional": True}),
    "lstm_NP_proj_2layers_bidir": (lstmlab.LSTM, {"num_layers": 2, "bidirectional": True,
                                                  "proj_size": 2}),
    "lstm_V_proj": (lstmlab.LSTM, {"variant": "V", "proj_size": 3}),
    "lstm_CIFG_nobias": (lstmlab.LSTM, {"variant": "CIFG", "bias": False}),
    "gru": (lstmlab.GRU, {}),
    "gru_2layers_bidir": (lstmlab.GRU, {"num_layers": 2, "bidirectional": True}),
    "gru_nobias": (lstmlab.GRU, {"bias": False}),
    "rnn_tanh": (lstmlab.RNN, {}),
    "rnn_relu_2layers_bidir": (lstmlab.RNN, {"nonlinearity": "relu", "num_layers": 2,
                                             "bidirectional": True}),
}


def layer_fixtures(root: Path) -> None:
    for seed, (name, (cls, kwargs)) in enumerate(LAYERS.items()):
        torch.manual_seed(seed)
        layer = cls(I, H, **kwargs)
        _perturb(layer, seed)
        x = torch.randn(T, I, dtype=torch.float64)
        output, _, trace = _reference(layer)(x, return_trace=True)
        _write(root, name, layer, {"inputs": _list(x), "outputs": _list(output),
                                   "trace": _trace(trace)})


def model_fixtures(root: Path) -> None:
    torch.manual_seed(100)
    seq = SequenceModel("lstm:CIFG", input_size=3, output_size=2, hidden_size=4)
    _perturb(seq, 100)
    x = torch.randn(6, 1, 3, dtype=torch.float64)
    ref = _reference(seq)
    with tracing(ref.recurrent) as rec:
        out = ref(x)
    _write(root, "model_sequence", seq, {"inputs": _list(x[:, 0]), "outputs": _list(out[:, 0]),
                                         "trace": _trace(_squeeze(rec[0]))})

    torch.manual_seed(101)
    music = MusicModel(keys=5, cell="gru", hidden_size=4, num_layers=2)
    _perturb(music, 101)
    frames = (torch.rand(6, 1, 5) < 0.4).to(torch.float64)
    logits, _ = _reference(music)(frames)
    _write(root, "model_music", music, {"inputs": _list(frames[:, 0]),
                                        "outputs": _list(torch.sigmoid(logits[:, 0])),
                                        "logits": _list(logits[:, 0])})

    chars = Vocabulary("char", tuple("\n abcdefghi"))
    for name, cell, layers in (("model_lm_lstm_FGR", "lstm:FGR", 2), ("model_lm_gru", "gru", 1)):
        torch.manual_seed(102)
        lm = LanguageModel(len(chars), cell=cell, hidden_size=4, num_layers=layers,
                           embedding_size=3)
        _perturb(lm, 102)
        text = "bad cafe\nfig"
        ids = chars.encode(text)
        ref = _reference(lm)
        with tracing(ref.recurrent) as rec:
            logits, _ = ref(ids.unsqueeze(1))
        _write(root, name, lm, {"text": text, "inputs": ids.tolist(),
                                "outputs": _list(logits[:, 0]),
                                "trace": _trace(_squeeze(rec[0]))},
               {"vocabulary": chars.to_dict()})

    words = WordVocabulary(Vocabulary("word", ("<unk>", "the", "film", "was", "fine", "dull")),
                           Vocabulary("char", ("<unk>", *"adefhilmnstuw")), lowercase=True)
    text = "The film was not dull"
    for pooling in ("last", "max", "mean", "attention"):
        torch.manual_seed(103)
        clf = TextClassifier(len(words.words), 3, cell="lstm:NIG" if pooling != "max" else "gru",
                             embedding_size=3, hidden_size=4, bidirectional=pooling != "mean",
                             pooling=pooling, char_vocab_size=len(words.chars),
                             char_embedding_size=2, char_hidden_size=2)
        _perturb(clf, 103)
        expected = _words_expected(clf, words, text)
        expected["outputs"] = _list(torch.softmax(expected.pop("_logits")[0], dim=0))
        _write(root, f"model_classifier_{pooling}", clf, expected,
               {"vocabulary": words.to_dict(), "labels": ["neg", "neutral", "pos"]})

    torch.manual_seed(104)
    tagger = SequenceTagger(len(words.words), 2, cell="rnn:relu", embedding_size=3,
                            hidden_size=4, num_layers=2, char_vocab_size=0)
    _perturb(tagger, 104)
    plain_words = WordVocabulary(words.words, None, lowercase=True)
    expected = _words_expected(tagger, plain_words, text)
    expected["outputs"] = _list(torch.softmax(expected.pop("_logits")[:, 0], dim=1))
    _write(root, "model_tagger", tagger, expected,
           {"vocabulary": plain_words.to_dict(), "tags": ["X", "Y"]})


def _squeeze(trace):
    """A model's trace of one sequence, (T, 1, H) -> (T, H)."""
    fix = [{k: v[:, 0] for k, v in d.items()} for d in trace.forward]
    rev = None if trace.reverse is None else [{k: v[:, 0] for k, v in d.items()}
                                              for d in trace.reverse]
    return type(trace)(fix, rev)


def _words_expected(model: nn.Module, vocab: WordVocabulary, text: str) -> dict:
    batch = vocab.batch([text.split()])
    ref = _reference(model)
    with tracing(ref.recurrent) as rec:
        logits = ref(batch.inputs, batch.lengths, batch.extras.get("chars"),
                     batch.extras.get("char_lengths"))
    encoded = vocab.encode(text.split())
    inputs = {"words": list(encoded.words)}
    if encoded.chars is not None:
        inputs["chars"] = [list(w) for w in encoded.chars]
    return {"text": text, "inputs": inputs, "_logits": logits,
            "trace": _trace(_squeeze(rec[0]))}


# --- gradient fixtures for train.js -------------------------------------------------------------

def gradient_fixtures(root: Path) -> None:
    """A tiny network in train.js's layout, a fixed sequence, the loss and every gradient.

    The network: a layer (lstm of a variant, gru or rnn) of H units over one-hot inputs, then a
    read-out o_t = sigmoid(V y_t + b) (or softmax); the loss is the binary cross-entropy of each
    unit (or the cross-entropy of the softmax) summed over the outputs and the scored steps."""
    cases = {"grad_lstm_V": "lstm:V", "grad_lstm_NP": "lstm:NP", "grad_lstm_CIFG": "lstm:CIFG",
             "grad_lstm_NFG+NOG": "lstm:NFG+NOG", "grad_lstm_FGR": "lstm:FGR",
             "grad_lstm_CIFG+FGR": "lstm:CIFG+FGR", "grad_lstm_NIG+NIAF+NOAF": "lstm:NIG+NIAF+NOAF",
             "grad_rnn": "rnn", "grad_rnn_relu": "rnn:relu", "grad_gru": "gru",
             "grad_lstm_V_softmax": "lstm:V"}
    inputs, outputs, steps, hidden = 4, 2, 6, 3
    for seed, (name, cell) in enumerate(cases.items()):
        softmax = name.endswith("_softmax")
        torch.manual_seed(200 + seed)
        model = SequenceModel(cell, inputs, outputs, hidden_size=hidden).to(torch.float64)
        _perturb(model, 200 + seed)
        symbols = torch.randint(0, inputs, (steps,))
        x = nn.functional.one_hot(symbols, inputs).to(torch.float64).unsqueeze(1)
        mask = torch.tensor([0, 1, 0, 1, 1, 1], dtype=torch.float64).view(steps, 1, 1)
        logits = model(x)
        if softmax:  # cross-entropy against one-hot targets
            target = nn.functional.one_hot(torch.randint(0, outputs, (steps, 1)), outputs)
            target = target.to(torch.float64)
            loss = -(target * torch.log_softmax(logits, dim=2) * mask).sum()
        else:  # binary cross-entropy of each sigmoid unit
            target = (torch.rand(steps, 1, outputs) < 0.5).to(torch.float64)
            loss = (nn.functional.binary_cross_entropy_with_logits(logits, target,
                                                                   reduction="none")
                    * mask).sum()
        loss.backward()
        params = {k: _list(p) for k, p in model.named_parameters()}
        grads = {k: _list(p.grad) for k, p in model.named_parameters()}
        fixture = {"cell": cell, "readout": "softmax" if softmax else "sigmoid",
                   "inputs": inputs, "outputs": outputs, "hidden": hidden,
                   "symbols": symbols.tolist(), "targets": _list(target[:, 0]),
                   "mask": [int(m) for m in mask.view(-1).tolist()], "params": params,
                   "loss": float(loss.detach()), "grads": grads}
        assert math.isfinite(fixture["loss"])
        (root / f"{name}.json").write_text(json.dumps(fixture) + "\n")


def make_fixtures(root: Path) -> None:
    """Write every fixture into ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    with kernels.use("loop"):  # the reference: the plain step loop of lstmlab.cells
        layer_fixtures(root)
        model_fixtures(root)
        gradient_fixtures(root)


if __name__ == "__main__":
    make_fixtures(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "fixtures")
