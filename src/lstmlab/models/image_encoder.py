"""The image encoder shared by the captioner and the detector: a small convolutional network
in torch.nn (no torchvision) that turns an image into a grid of feature vectors.

    images (B, 3, H, W) in [0, 1]
      -> blocks of conv 3x3 (stride s_k) - batch norm - ReLU, C_k channels each
      -> features (B, C, Hg, Wg),  Hg = H / prod(s_k)

    >>> encoder = ImageEncoder(channels=(32, 64, 128), strides=(2, 2, 2))
    >>> encoder(torch.rand(8, 3, 64, 64)).shape          # (8, 128, 8, 8)
    >>> encoder.stride                                    # 8 pixels per grid cell

A grid cell's feature sees a window around it (the receptive field grows by 2 * the product of
the earlier strides per 3x3 block); a stride-1 block at the end widens it without shrinking the
grid. The pixels are centred (x - 0.5) before the first convolution.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn


class ImageEncoder(nn.Module):
    """Images (B, 3, H, W) -> feature grid (B, C, H / stride, W / stride).

    Args:
        channels: output channels of each block (C is the last).
        strides: each block's stride (1 or 2), as many as ``channels``.
    """

    def __init__(self, channels: Sequence[int] = (32, 64, 128), strides: Sequence[int] = (2, 2, 2)
                 ) -> None:
        super().__init__()
        channels, strides = [int(c) for c in channels], [int(s) for s in strides]
        if not channels or len(channels) != len(strides):
            raise ValueError(f"the encoder needs one stride per block: {len(channels)} channel "
                             f"counts, {len(strides)} strides")
        if any(c < 1 for c in channels) or any(s not in (1, 2) for s in strides):
            raise ValueError(f"channels must be positive and strides 1 or 2, got {channels} and "
                             f"{strides}")
        self.channels, self.strides = channels, strides
        blocks: list[nn.Module] = []
        width = 3
        for c, s in zip(channels, strides, strict=True):
            blocks += [nn.Conv2d(width, c, 3, stride=s, padding=1, bias=False),
                       nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            width = c
        self.blocks = nn.Sequential(*blocks)

    @property
    def out_channels(self) -> int:
        return self.channels[-1]

    @property
    def stride(self) -> int:
        """Pixels per grid cell."""
        return math.prod(self.strides)

    def grid_size(self, image_size: int) -> int:
        """Hg (= Wg) for square images of ``image_size`` pixels."""
        size = image_size
        for s in self.strides:
            size = (size + 1) // 2 if s == 2 else size
        return size

    def config(self) -> dict[str, Any]:
        return {"channels": list(self.channels), "strides": list(self.strides)}

    def forward(self, images: Tensor) -> Tensor:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W), got {tuple(images.shape)}")
        return self.blocks(images - 0.5)
