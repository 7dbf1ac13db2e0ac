"""The one batch type every task hands to the training loop.

Shapes are time-major: T steps (the longest sequence of the batch), B sequences, then the
features (I input lines, or none for token ids).

    >>> batch = Batch(inputs, targets)                  # every step of every row scored
    >>> batch = Batch(inputs, targets, mask, lengths)   # padded sequences of their own lengths
    >>> batch.to("cuda").select(slice(0, 8))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass
class Batch:
    """A batch of sequences, time-major.

    Attributes:
        inputs: (T, B, I) float features or (T, B) int64 token ids; zero past each length.
        targets: (T, B) int64 class indices or (T, B, O) float values (the task says which);
            zero (or ignored) where not scored. A sequence-to-sequence batch's targets (and
            mask) have steps of their own, T' (the target length), which may exceed T.
        mask: (T, B) bool, the scored steps (loss and correctness). Default: every step
            within each sequence's length.
        lengths: (B,) int64, each sequence's true length (<= T). Default: T for every row.
        extras: task-specific per-sequence facts (marker positions, labels, flags), each a
            tensor with the batch as its first dimension (B, ...) and no time dimension.
    """

    inputs: Tensor
    targets: Tensor
    mask: Tensor | None = None
    lengths: Tensor | None = None
    extras: dict[str, Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.inputs.dim() < 2:
            raise ValueError(f"Batch inputs are time-major (T, B, ...), got shape "
                             f"{tuple(self.inputs.shape)}")
        steps, rows = self.inputs.shape[:2]
        if self.lengths is None:
            self.lengths = torch.full((rows,), steps, dtype=torch.long,
                                      device=self.inputs.device)
        if self.mask is None:
            time = torch.arange(steps, device=self.inputs.device).unsqueeze(1)
            self.mask = time < self.lengths.to(self.inputs.device).unsqueeze(0)

    @property
    def batch_size(self) -> int:
        """B, the number of sequences."""
        return self.inputs.shape[1]

    @property
    def steps(self) -> int:
        """T, the padded length."""
        return self.inputs.shape[0]

    def __len__(self) -> int:
        return self.batch_size

    def to(self, device: torch.device | str) -> Batch:
        """The same batch on another device."""
        return Batch(self.inputs.to(device), self.targets.to(device), self.mask.to(device),
                     self.lengths.to(device), {k: v.to(device) for k, v in self.extras.items()})

    def select(self, index: slice | Sequence[int] | Tensor) -> Batch:
        """Some of the sequences (a slice or indices), trimmed to their longest length."""
        if not isinstance(index, slice):
            index = torch.as_tensor(index, dtype=torch.long, device=self.lengths.device)
        lengths = self.lengths[index]
        steps = int(lengths.max()) if lengths.numel() else 0
        # targets may run longer than the inputs (a translation): keep up to the last scored step
        mask = self.mask[:, index]
        scored = mask.any(1).nonzero()
        target_steps = max(steps, int(scored.max()) + 1 if scored.numel() else 0)
        return Batch(self.inputs[:steps, index], self.targets[:target_steps, index],
                     mask[:target_steps], lengths,
                     {k: v[index] for k, v in self.extras.items()})

    def shard(self, rank: int, world_size: int) -> Batch:
        """Rank ``rank``'s share of the rows for data-parallel training: contiguous, the first
        ``B % world_size`` ranks one row more. Every row belongs to exactly one rank."""
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside 0..{world_size - 1}")
        if world_size > self.batch_size:
            raise ValueError(f"{world_size} processes cannot share a batch of "
                             f"{self.batch_size} rows: use at most {self.batch_size} processes "
                             "or a larger batch")
        base, extra = divmod(self.batch_size, world_size)
        start = rank * base + min(rank, extra)
        return self.select(slice(start, start + base + (rank < extra)))

    @staticmethod
    def cat(batches: Sequence[Batch]) -> Batch:
        """Join batches along the batch dimension, zero-padding the shorter ones in time."""
        if not batches:
            raise ValueError("Batch.cat needs at least one batch")
        steps = max(b.steps for b in batches)
        target_steps = max(steps, *(b.targets.shape[0] for b in batches))  # may be longer

        def pad(x: Tensor, steps: int = steps) -> Tensor:
            if x.shape[0] == steps:
                return x
            return torch.cat([x, x.new_zeros((steps - x.shape[0], *x.shape[1:]))])

        keys = batches[0].extras.keys()
        return Batch(torch.cat([pad(b.inputs) for b in batches], 1),
                     torch.cat([pad(b.targets, target_steps) for b in batches], 1),
                     torch.cat([pad(b.mask, target_steps) for b in batches], 1),
                     torch.cat([b.lengths for b in batches]),
                     {k: torch.cat([b.extras[k] for b in batches]) for k in keys})
