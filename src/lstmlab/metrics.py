"""Scores of trained heads: accuracy, per-class precision / recall / F1 with the confusion
matrix, entity-level F1 of BIO tags (the CoNLL rule), the frame negative log-likelihood of
polyphonic music, and for detection the IoU of boxes and average precision with its curve.

    >>> report = classification_report(gold, predicted, labels=["neg", "pos"])
    >>> report.accuracy, report.f1, report.confusion     # confusion[gold][predicted]
    >>> chunk_scores([["B-PER", "I-PER", "O"]], [["B-PER", "O", "O"]]).f1     # 0.0
    >>> total, frames = frame_nll(logits, rolls, mask)   # nats summed over keys and frames

Plain Python and torch only: the figures here are checked by hand in the tests.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def _f1(precision: float, recall: float) -> float:
    return _ratio(2 * precision * recall, precision + recall)


def accuracy(gold: Sequence[Any], predicted: Sequence[Any]) -> float:
    """The fraction of positions where ``predicted`` equals ``gold`` (0 for none)."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    return _ratio(sum(g == p for g, p in zip(gold, predicted, strict=True)), len(gold))


@dataclass
class ClassReport:
    """Per-class scores (lists in the order of ``labels``) and the confusion matrix:
    ``confusion[g][p]`` counts items of gold class g predicted as p."""

    labels: list[str]
    accuracy: float
    precision: list[float]
    recall: list[float]
    f1: list[float]
    support: list[int]
    confusion: list[list[int]]

    @property
    def macro_f1(self) -> float:
        """The unweighted mean F1 over classes that occur (in gold or predictions)."""
        seen = [f for f, s, column in zip(self.f1, self.support, zip(*self.confusion,
                                                                      strict=True), strict=True)
                if s or sum(column)]
        return _ratio(sum(seen), len(seen))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "macro_f1": self.macro_f1}

    def table(self) -> str:
        """Per-class scores and the confusion matrix as aligned text."""
        width = max(8, *(len(label) for label in self.labels))
        lines = [f"{'label':<{width}}  precision  recall     f1  support"]
        for i, label in enumerate(self.labels):
            lines.append(f"{label:<{width}}  {self.precision[i]:9.4f}  {self.recall[i]:6.4f}  "
                         f"{self.f1[i]:.4f}  {self.support[i]:7,}")
        lines.append(f"accuracy {self.accuracy:.4f}, macro F1 {self.macro_f1:.4f}, "
                     f"{sum(self.support):,} items")
        lines.append("")
        lines.append("confusion (rows gold, columns predicted):")
        cell = max(5, *(len(f"{n:,}") for row in self.confusion for n in row),
                   *(len(label) for label in self.labels))
        lines.append(" " * width + "  " + " ".join(f"{label:>{cell}}" for label in self.labels))
        for label, row in zip(self.labels, self.confusion, strict=True):
            lines.append(f"{label:<{width}}  " + " ".join(f"{n:>{cell},}" for n in row))
        return "\n".join(lines)


def classification_report(gold: Sequence[int], predicted: Sequence[int],
                          labels: Sequence[str]) -> ClassReport:
    """Accuracy, per-class precision, recall, F1 and support, and the confusion matrix of class
    indices in [0, len(labels)). A class never predicted has precision 0 (likewise recall for a
    class absent from gold)."""
    n = len(labels)
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    confusion = [[0] * n for _ in range(n)]
    for g, p in zip(gold, predicted, strict=True):
        if not (0 <= g < n and 0 <= p < n):
            raise ValueError(f"class indices must be in [0, {n}), got gold {g}, predicted {p}")
        confusion[g][p] += 1
    support = [sum(row) for row in confusion]
    predicted_counts = [sum(confusion[g][p] for g in range(n)) for p in range(n)]
    precision = [_ratio(confusion[c][c], predicted_counts[c]) for c in range(n)]
    recall = [_ratio(confusion[c][c], support[c]) for c in range(n)]
    f1 = [_f1(p, r) for p, r in zip(precision, recall, strict=True)]
    return ClassReport(list(labels), accuracy(gold, predicted), precision, recall, f1, support,
                       confusion)


# --- entity-level (chunk) scores of BIO tags ---------------------------------------------------

_CHUNK_TAG = re.compile(r"^([BIES])-(.+)$")


def is_chunk_tagging(tags: Sequence[str]) -> bool:
    """Whether a tag set is BIO / IOB / BIOES: every tag "O" or "B-X", "I-X", "E-X", "S-X",
    and at least one that is not "O"."""
    tags = set(tags)
    return bool(tags - {"O"}) and all(t == "O" or _CHUNK_TAG.match(t) for t in tags)


def _split(tag: str) -> tuple[str, str]:
    match = _CHUNK_TAG.match(tag)
    return (match.group(1), match.group(2)) if match else ("O", "")


def _chunk_ends(prev: str, prev_type: str, tag: str, kind: str) -> bool:
    """conlleval's rule: does the chunk open before this tag end here?"""
    if prev in ("E", "S"):
        return True
    if prev == "B" and tag in ("B", "S", "O"):
        return True
    if prev == "I" and tag in ("B", "S", "O"):
        return True
    return prev != "O" and prev_type != kind


def _chunk_starts(prev: str, prev_type: str, tag: str, kind: str) -> bool:
    """conlleval's rule: does a chunk start at this tag? (An I-X after O or after another type
    starts one, as IOB1 files need.)"""
    if tag in ("B", "S"):
        return True
    if tag in ("I", "E") and prev in ("E", "S", "O"):
        return True
    return tag != "O" and prev_type != kind


def chunks(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """The chunks (entities) of one sentence's tags as (type, start, end), end exclusive, by
    the rules of the CoNLL shared tasks' conlleval script."""
    found = []
    prev, prev_type, start = "O", "", None
    for i, tag in enumerate([*tags, "O"]):  # a final O closes the last chunk
        kind_tag, kind = _split(tag)
        if start is not None and _chunk_ends(prev, prev_type, kind_tag, kind):
            found.append((prev_type, start, i))
            start = None
        if kind_tag != "O" and _chunk_starts(prev, prev_type, kind_tag, kind):
            start = i
        prev, prev_type = kind_tag, kind
    return found


@dataclass
class ChunkScores:
    """Entity-level precision, recall and F1 (micro over all chunks), with the counts."""

    precision: float
    recall: float
    f1: float
    correct: int
    predicted: int
    gold: int
    by_type: dict[str, dict[str, float]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def chunk_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]
                 ) -> ChunkScores:
    """Entity-level scores of predicted tag sequences against gold ones (one list of tags per
    sentence): a predicted chunk is correct when a gold chunk has the same type, start and
    end."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted")
    correct = n_pred = n_gold = 0
    per_type: dict[str, list[int]] = {}
    for g, p in zip(gold, predicted, strict=True):
        if len(g) != len(p):
            raise ValueError(f"a sentence of {len(g)} gold tags has {len(p)} predicted")
        gold_chunks, pred_chunks = set(chunks(g)), set(chunks(p))
        hits = gold_chunks & pred_chunks
        correct, n_pred, n_gold = correct + len(hits), n_pred + len(pred_chunks), \
            n_gold + len(gold_chunks)
        for chunk_set, slot in ((hits, 0), (pred_chunks, 1), (gold_chunks, 2)):
            for kind, _, _ in chunk_set:
                per_type.setdefault(kind, [0, 0, 0])[slot] += 1
    by_type = {}
    for kind, (c, p_, g_) in sorted(per_type.items()):
        pr, rc = _ratio(c, p_), _ratio(c, g_)
        by_type[kind] = {"precision": pr, "recall": rc, "f1": _f1(pr, rc), "gold": g_}
    precision, recall = _ratio(correct, n_pred), _ratio(correct, n_gold)
    return ChunkScores(precision, recall, _f1(precision, recall), correct, n_pred, n_gold,
                       by_type)


# --- polyphonic music --------------------------------------------------------------------------


def frame_nll(logits: Tensor, targets: Tensor, mask: Tensor | None = None) -> tuple[float, int]:
    """The negative log-likelihood of piano-roll frames under independent Bernoulli keys.

    Per frame: sum over the K keys of the binary cross-entropy in nats,
    -sum_k [y_k log sigmoid(l_k) + (1 - y_k) log(1 - sigmoid(l_k))].

    Args:
        logits: (T, B, K) logits of each key being down at each predicted frame.
        targets: (T, B, K) the frames that came (0 or 1).
        mask: (T, B) bool, the predicted frames to count (None: all).

    Returns:
        (the NLL summed over counted frames, the number of counted frames): divide the totals
        of all test pieces for the frame-weighted mean of the published tables.
    """
    if logits.shape != targets.shape or logits.dim() != 3:
        raise ValueError(f"logits and targets must both be (T, B, K), got "
                         f"{tuple(logits.shape)} and {tuple(targets.shape)}")
    per_frame = F.binary_cross_entropy_with_logits(
        logits.double(), targets.double(), reduction="none").sum(-1)  # (T, B)
    if mask is None:
        return float(per_frame.sum()), per_frame.numel()
    mask = mask.to(torch.bool)
    return float(per_frame[mask].sum()), int(mask.sum())


# --- detection: box overlap and average precision ----------------------------------------------


def box_iou(a: Any, b: Any) -> Any:
    """Intersection over union of boxes a (N, 4) and b (M, 4), [x0, y0, x1, y1] -> (N, M).

    numpy arrays in, numpy out (float64); a box of zero area has IoU 0 with everything."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


@dataclass
class PRCurve:
    """Average precision and its precision-recall curve (one point per detection, by
    decreasing score); ``truths`` true boxes, ``detections`` scored boxes."""

    ap: float | None
    precision: list[float]
    recall: list[float]
    truths: int
    detections: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def average_precision(detections: Sequence[tuple[Any, Any]], truths: Sequence[Any],
                      iou: float = 0.5, counted: Sequence[Any] | None = None) -> PRCurve:
    """AP at IoU ``iou`` over images, PASCAL VOC's all-point interpolation (VOC 2010 on).

    Args:
        detections: per image (boxes (D, 4), scores (D,)).
        truths: per image the true boxes (G, 4).
        iou: a detection is a hit when its IoU with a true box not yet taken is >= this;
            detections are taken by decreasing score (over all images), each true box at most
            once (a second detection of it is a false positive).
        counted: per image a bool per true box (G,): the AP of a subset of the true boxes
            (a bucket), COCO's "ignore" rule. The matching is unchanged (over every true box);
            a hit on a box not counted is left out of the curve (neither right nor wrong), a
            false positive is counted when the true box it overlaps most is counted or it
            overlaps none (a false alarm on the background costs every subset). None: all.

    Returns:
        AP = sum over the recall steps of (r_k - r_{k-1}) * max precision at recall >= r_k;
        None when there is no true box (counted). The curve is the raw precision / recall
        after each detection (counted).
    """
    if len(detections) != len(truths):
        raise ValueError(f"{len(detections)} images of detections but {len(truths)} of truths")
    if counted is not None and len(counted) != len(truths):
        raise ValueError(f"{len(counted)} images of counted flags but {len(truths)} of truths")
    rows = []  # (score, image, box)
    for image, (boxes, scores) in enumerate(detections):
        boxes, scores = np.asarray(boxes).reshape(-1, 4), np.asarray(scores).reshape(-1)
        rows += [(float(s), image, b) for b, s in zip(boxes, scores, strict=True)]
    rows.sort(key=lambda r: -r[0])
    counts = [np.ones(len(np.asarray(t).reshape(-1, 4)), dtype=bool) if counted is None
              else np.asarray(c, dtype=bool).reshape(-1) for t, c in
              zip(truths, counted if counted is not None else truths, strict=True)]
    total = int(sum(c.sum() for c in counts))
    taken = [np.zeros(len(c), dtype=bool) for c in counts]
    hits = np.zeros(len(rows))
    keep = np.ones(len(rows), dtype=bool)
    for k, (_, image, box) in enumerate(rows):
        gt = np.asarray(truths[image]).reshape(-1, 4)
        if not len(gt):
            continue
        overlaps = box_iou(box[None], gt)[0]
        nearest = int(overlaps.argmax())
        free = np.where(taken[image], -1.0, overlaps)
        best = int(free.argmax())
        if free[best] >= iou:
            taken[image][best] = True
            hits[k] = 1
            keep[k] = bool(counts[image][best])
        else:
            keep[k] = bool(counts[image][nearest]) or overlaps[nearest] <= 0
    hits = hits[keep]
    rows = [r for r, kept in zip(rows, keep, strict=True) if kept]
    if total == 0:
        return PRCurve(None, [], [], 0, len(rows))
    tp = np.cumsum(hits)
    precision = tp / np.arange(1, len(rows) + 1)
    recall = tp / total
    envelope = np.maximum.accumulate(np.concatenate([precision, [0.0]])[::-1])[::-1]
    steps = np.diff(np.concatenate([[0.0], recall]))
    ap = float(np.sum(steps * envelope[:-1]))
    return PRCurve(ap, precision.tolist(), recall.tolist(), total, len(rows))
