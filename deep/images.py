"""Image helpers for TensorBoard: tiling a batch of images into one grid image."""
from __future__ import annotations

import numpy as np


def image_grid(images: np.ndarray, columns: int = 8, gap: int = 1) -> np.ndarray:
    """Tile (N, H, W, 1) images in [0, 1] into one (rows*(H+gap)-gap, columns*(W+gap)-gap) image."""
    n, height, width = images.shape[:3]
    columns = min(columns, n)
    rows = -(-n // columns)
    grid = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap), 0.5, dtype=np.float32)
    for k, image in enumerate(images[..., 0]):
        r, c = divmod(k, columns)
        grid[r * (height + gap): r * (height + gap) + height, c * (width + gap): c * (width + gap) + width] = image
    return grid
