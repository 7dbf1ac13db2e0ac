"""People detection on a feature grid: ReInspect's recurrent set decoder, and the one-box-per-cell
baseline with non-maximum suppression.

ReInspect (Stewart, Andriluka & Ng 2016, "End-to-end people detection in crowded scenes"),
``head="lstm"``: in each grid cell a recurrent decoder (any cell of ``lstmlab.cells``) reads the
cell's feature at every one of K steps and emits one box and a confidence per step, in order:

    x = feature of cell (r, c)                                   (C,), the same at every step
    s_k = cell(x, s_{k-1});  (dx, dy, w, h, logit)_k = W h_k + b  k = 1..K

A cell answers for the true boxes whose centre lies in its region: the cell widened by
``region`` cell widths on every side, so a box near a border belongs to the neighbours too.
Boxes are in cell units (the grid stride): (dx, dy) from the cell's centre to the box's, (w, h)
its size. Training matches the K predictions to the cell's true boxes one to one
(``hungarian_match``) and stitching joins the cells' boxes into the image's without NMS
(``stitch``).

The baseline, ``head="single"`` (OverFeat-style, Sermanet et al. 2014): one box and one
confidence per cell, trained on the true box whose centre is in the cell (the nearest to its
centre when there are several); overlapping predictions are then removed by greedy
non-maximum suppression (``nms``) - which also removes a second person standing close behind
the first, the case the recurrent decoder is for.

    >>> model = Detector(head="lstm", cell="lstm", max_boxes=5)
    >>> raw = model(images)                              # (B, Hg, Wg, K, 5)
    >>> loss, parts = model.loss(raw, boxes, counts)
    >>> detections = model.detect(images)                # per image (boxes (N, 4), scores (N,))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from lstmlab.metrics import box_iou
from lstmlab.models.image_encoder import ImageEncoder
from lstmlab.models.recurrent import as_hx, canonical_name, cell_state, make_cell
from lstmlab.models.registry import register

HEADS = ("lstm", "single")
# ReInspect's matching cost is lexicographic: (a miss, the prediction's rank, the L1 distance).
# Weights far apart give the same order as long as L1 < RANK and K * RANK < MISS.
MISS, RANK, L1_CAP = 1e6, 1e3, 999.0


# --- the Hungarian matching and its loss ---------------------------------------------------------


def match_cost(pred: Tensor, true: Tensor) -> Tensor:
    """ReInspect's cost of predictions (..., K, 4) against true boxes (..., G, 4), both (dx, dy,
    w, h) in cell units -> (..., K, G): MISS if the predicted centre lies outside the true box,
    plus RANK times the prediction's rank k, plus the L1 distance of the four numbers."""
    miss = (((pred[..., :, None, 0] - true[..., None, :, 0]).abs() > true[..., None, :, 2] / 2)
            | ((pred[..., :, None, 1] - true[..., None, :, 1]).abs() > true[..., None, :, 3] / 2))
    l1 = (pred[..., :, None, :] - true[..., None, :, :]).abs().sum(-1).clamp(max=L1_CAP)
    rank = torch.arange(pred.shape[-2], dtype=pred.dtype, device=pred.device)[:, None]
    return MISS * miss.to(pred.dtype) + RANK * rank + l1


def hungarian_match(pred: Tensor, true: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The one-to-one assignment of predictions (K, 4) to true boxes (G, 4), G <= K, of least
    ``match_cost`` (scipy's linear_sum_assignment): (prediction indices, true indices), each
    (G,), in order of the true boxes."""
    cost = match_cost(pred.detach().double(), true.detach().double()).cpu().numpy()
    rows, cols = linear_sum_assignment(cost)
    order = np.argsort(cols)
    return rows[order], cols[order]


# --- boxes: cells, stitching, NMS ----------------------------------------------------------------


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float = 0.5) -> np.ndarray:
    """Greedy non-maximum suppression: the indices kept, by decreasing score; a box is dropped
    when its IoU with a kept box of higher score exceeds ``iou``."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        best, order = order[0], order[1:]
        keep.append(int(best))
        if order.size:
            order = order[box_iou(boxes[best][None], boxes[order])[0] <= iou]
    return np.array(keep, dtype=np.int64)


def stitch(boxes: np.ndarray, scores: np.ndarray, iou: float = 0.5, min_score: float = 0.01
           ) -> tuple[np.ndarray, np.ndarray]:
    """ReInspect's stitching: join the boxes of every cell into the image's set, without NMS.

    Args:
        boxes: (Hg, Wg, K, 4) pixels; scores: (Hg, Wg, K) confidences.
        iou: a new box is the same person as an accepted box of a neighbouring cell when the
            one-to-one matching pairs them and their IoU is at least this.
        min_score: boxes below it are left out.

    The cells are visited in raster order. Each cell's boxes are matched one to one against
    the boxes accepted so far from the 8 neighbouring cells (Hungarian matching on -IoU, pairs
    below ``iou`` not allowed); a matched box is a duplicate (the accepted one keeps the
    higher score), the others are accepted. A cell's own boxes never remove each other: two
    people in one cell stay two boxes.
    """
    rows, cols, _ = scores.shape
    kept_boxes: list[np.ndarray] = []
    kept_scores: list[float] = []
    kept_cells: list[tuple[int, int]] = []
    for r in range(rows):
        for c in range(cols):
            mine = np.flatnonzero(scores[r, c] >= min_score)
            if not mine.size:
                continue
            near = [i for i, (rr, cc) in enumerate(kept_cells) if abs(rr - r) <= 1
                    and abs(cc - c) <= 1]
            fresh = np.ones(mine.size, dtype=bool)
            if near:
                overlap = box_iou(boxes[r, c, mine], np.stack([kept_boxes[i] for i in near]))
                cost = np.where(overlap >= iou, -overlap, 1.0)
                for a, b in zip(*linear_sum_assignment(cost), strict=True):
                    if overlap[a, b] >= iou:
                        fresh[a] = False
                        k = near[b]
                        kept_scores[k] = max(kept_scores[k], float(scores[r, c, mine[a]]))
            for a in np.flatnonzero(fresh):
                kept_boxes.append(boxes[r, c, mine[a]])
                kept_scores.append(float(scores[r, c, mine[a]]))
                kept_cells.append((r, c))
    if not kept_boxes:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    return np.stack(kept_boxes).astype(np.float32), np.array(kept_scores, np.float32)


# --- the model -----------------------------------------------------------------------------------


@register("detector")
class Detector(nn.Module):
    """Images (B, 3, S, S) -> per cell K boxes and confidence logits (B, Hg, Wg, K, 5).

    Args:
        head: "lstm" (ReInspect: a recurrent decoder per cell, K = ``max_boxes``) or "single"
            (one box per cell, then NMS; K = 1).
        cell: the decoder's cell ("lstm", "lstm:CIFG", "gru", ...; unused by "single").
        max_boxes: K, the most boxes one cell emits.
        hidden: decoder units (and the width of the single head's hidden layer).
        channels, strides: the encoder's blocks (``ImageEncoder``).
        image_size: S, the side in pixels the model reads.
        region: how far beyond its own square, in cell widths, a cell answers for box centres
            ("lstm" only; the single head answers for its own square).
        nms_iou: the single head's NMS threshold; stitch_iou: the stitching threshold.
    """

    def __init__(self, head: str = "lstm", cell: str = "lstm", max_boxes: int = 5,
                 hidden: int = 128, channels: Sequence[int] = (24, 48, 64, 96, 96),
                 strides: Sequence[int] = (2, 2, 2, 2, 1), image_size: int = 128,
                 region: float = 0.25, nms_iou: float = 0.5, stitch_iou: float = 0.5) -> None:
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head must be one of {', '.join(HEADS)}, got {head!r}")
        if max_boxes < 1:
            raise ValueError(f"max_boxes must be at least 1, got {max_boxes}")
        if not 0 <= region <= 0.5:
            raise ValueError(f"region must be in [0, 0.5] cell widths, got {region}")
        self.head, self.cell_name = head, canonical_name(cell)
        self.max_boxes = max_boxes if head == "lstm" else 1
        self.hidden, self.image_size, self.region = hidden, image_size, float(region)
        self.nms_iou, self.stitch_iou = float(nms_iou), float(stitch_iou)
        self.encoder = ImageEncoder(channels, strides)
        width = self.encoder.out_channels
        if head == "lstm":
            self.decoder = make_cell(self.cell_name, width, hidden)
            self.out = nn.Linear(hidden, 5)
        else:
            self.out = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, 5))

    def config(self) -> dict[str, Any]:
        return {"head": self.head, "cell": self.cell_name, "max_boxes": self.max_boxes,
                "hidden": self.hidden, **self.encoder.config(), "image_size": self.image_size,
                "region": self.region, "nms_iou": self.nms_iou, "stitch_iou": self.stitch_iou}

    @property
    def stride(self) -> int:
        return self.encoder.stride

    def forward(self, images: Tensor) -> Tensor:
        """images (B, 3, S, S) -> raw outputs (B, Hg, Wg, K, 5): (dx, dy, w, h) in cell units
        and the confidence logit, per cell and step."""
        grid = self.encoder(images).permute(0, 2, 3, 1)  # (B, Hg, Wg, C)
        b, rows, cols, width = grid.shape
        x = grid.reshape(-1, width)
        if self.head == "single":
            return self.out(x).view(b, rows, cols, 1, 5)
        state, outs = None, []
        for _ in range(self.max_boxes):
            state = cell_state(self.decoder(x, None if state is None else as_hx(state)))
            outs.append(self.out(state[0]))
        return torch.stack(outs, 1).view(b, rows, cols, self.max_boxes, 5)

    # --- targets and loss ----------------------------------------------------------------------

    def cell_targets(self, boxes: Tensor, counts: Tensor, rows: int, cols: int
                     ) -> tuple[Tensor, Tensor, int]:
        """Each cell's true boxes in cell units: (B, Hg, Wg, K, 4) (dx, dy, w, h), nearest to
        the cell centre first, and their number (B, Hg, Wg); also how many (box, cell) pairs
        did not fit into K.

        boxes (B, M, 4) [x0, y0, x1, y1] pixels, valid up to counts (B,)."""
        s, k = float(self.stride), self.max_boxes
        centre_x = (boxes[..., 0] + boxes[..., 2]) / 2 / s  # (B, M) in cells
        centre_y = (boxes[..., 1] + boxes[..., 3]) / 2 / s
        size = torch.stack([boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]], -1) / s
        cell_y = torch.arange(rows, dtype=boxes.dtype, device=boxes.device) + 0.5
        cell_x = torch.arange(cols, dtype=boxes.dtype, device=boxes.device) + 0.5
        dx = centre_x[:, None, None, :] - cell_x[None, None, :, None]  # (B, 1, Wg, M)
        dy = centre_y[:, None, None, :] - cell_y[None, :, None, None]  # (B, Hg, 1, M)
        dx, dy = torch.broadcast_tensors(dx, dy)  # (B, Hg, Wg, M)
        valid = (torch.arange(boxes.shape[1], device=boxes.device)[None, :]
                 < counts[:, None])[:, None, None, :]
        if self.head == "single":  # the cell's own square, the nearest centre only
            inside = (dx.abs() <= 0.5) & (dy.abs() <= 0.5) & (dx < 0.5) & (dy < 0.5) & valid
        else:
            half = 0.5 + self.region
            inside = (dx.abs() <= half) & (dy.abs() <= half) & valid
        distance = torch.where(inside, dx ** 2 + dy ** 2, torch.full_like(dx, float("inf")))
        order = distance.argsort(-1)[..., :k]  # (B, Hg, Wg, k) nearest first
        number = inside.sum(-1)
        dropped = int((number - k).clamp(min=0).sum())
        gather = lambda t: t.gather(-1, order)  # noqa: E731
        size_b = size[:, None, None].expand(-1, rows, cols, -1, -1)
        targets = torch.stack([gather(dx), gather(dy),
                               size_b[..., 0].gather(-1, order), size_b[..., 1].gather(-1, order)],
                              -1)
        targets = targets[..., :k, :]
        if targets.shape[-2] < k:
            targets = F.pad(targets, (0, 0, 0, k - targets.shape[-2]))
        return targets, number.clamp(max=k), dropped

    def loss(self, raw: Tensor, boxes: Tensor, counts: Tensor, box_weight: float = 1.0
             ) -> tuple[Tensor, dict[str, float]]:
        """Cross-entropy of the confidences (mean over every prediction) plus ``box_weight``
        times the L1 distance (cell units, mean over matched predictions) of the boxes.

        "lstm": the predictions of a cell are matched to its true boxes by ``hungarian_match``
        (ReInspect's loss); matched ones should be confident, the rest not. "single": a cell
        should be confident when a box's centre is in it, and predict the nearest such box."""
        b, rows, cols, k, _ = raw.shape
        targets, number, dropped = self.cell_targets(boxes, counts, rows, cols)
        flat_raw, flat_t, flat_n = raw.reshape(-1, k, 5), targets.reshape(-1, k, 4), \
            number.reshape(-1)
        confident = torch.zeros(flat_raw.shape[:2], device=raw.device)
        cells = torch.nonzero(flat_n > 0).squeeze(1)
        pred_index, true_index, cell_index = [], [], []
        if self.head == "single":
            pred_index = [np.zeros(len(cells), np.int64)]
            true_index = pred_index
            cell_index = [cells.cpu().numpy()]
        else:
            costs = match_cost(flat_raw[cells, :, :4].detach().double(),
                               flat_t[cells].double()).cpu().numpy()
            for row, (n, g) in enumerate(zip(cells.tolist(), flat_n[cells].tolist(),
                                             strict=True)):
                p, t = linear_sum_assignment(costs[row, :, :g])
                pred_index.append(p)
                true_index.append(t)
                cell_index.append(np.full(len(p), n))
        if cell_index:
            at = torch.as_tensor(np.concatenate(cell_index), device=raw.device)
            ip = torch.as_tensor(np.concatenate(pred_index), device=raw.device)
            it = torch.as_tensor(np.concatenate(true_index), device=raw.device)
        else:
            at = ip = it = torch.zeros(0, dtype=torch.long, device=raw.device)
        confident[at, ip] = 1.0
        conf_loss = F.binary_cross_entropy_with_logits(flat_raw[..., 4], confident)
        if at.numel():
            box_loss = (flat_raw[at, ip, :4] - flat_t[at, it]).abs().sum(1).mean()
        else:
            box_loss = raw.sum() * 0.0
        total = conf_loss + box_weight * box_loss
        parts = {"confidence": float(conf_loss.detach()), "box_l1": float(box_loss.detach()),
                 "matched": float(at.numel()), "dropped": float(dropped)}
        return total, parts

    # --- from outputs to detections ------------------------------------------------------------

    def decode(self, raw: Tensor) -> tuple[Tensor, Tensor]:
        """Raw outputs (B, Hg, Wg, K, 5) -> boxes (B, Hg, Wg, K, 4) [x0, y0, x1, y1] pixels
        and confidences (B, Hg, Wg, K) in [0, 1]."""
        _, rows, cols, _, _ = raw.shape
        s = float(self.stride)
        cy = (torch.arange(rows, dtype=raw.dtype, device=raw.device) + 0.5)[None, :, None, None]
        cx = (torch.arange(cols, dtype=raw.dtype, device=raw.device) + 0.5)[None, None, :, None]
        x, y = (cx + raw[..., 0]) * s, (cy + raw[..., 1]) * s
        w, h = raw[..., 2].clamp(min=0.05) * s, raw[..., 3].clamp(min=0.05) * s
        boxes = torch.stack([x - w / 2, y - h / 2, x + w / 2, y + h / 2], -1)
        return boxes, torch.sigmoid(raw[..., 4])

    @torch.no_grad()
    def detect(self, images: Tensor, min_score: float = 0.01
               ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Detections per image: (boxes (N, 4) pixels, scores (N,)), by stitching ("lstm") or
        NMS ("single"), boxes below ``min_score`` left out."""
        boxes, scores = self.decode(self(images))
        boxes, scores = boxes.float().cpu().numpy(), scores.float().cpu().numpy()
        out = []
        for b in range(boxes.shape[0]):
            if self.head == "lstm":
                out.append(stitch(boxes[b], scores[b], self.stitch_iou, min_score))
                continue
            flat_boxes, flat_scores = boxes[b].reshape(-1, 4), scores[b].reshape(-1)
            keep = flat_scores >= min_score
            flat_boxes, flat_scores = flat_boxes[keep], flat_scores[keep]
            chosen = nms(flat_boxes, flat_scores, self.nms_iou)
            out.append((flat_boxes[chosen], flat_scores[chosen]))
        return out
