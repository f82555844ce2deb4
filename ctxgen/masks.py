"""Stage 3b: the CLA and ICA attention masks (R15-R18). Pure numpy, torch-free. True = may attend."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MaskSet:
    """Both boolean masks over the full sequence, rows are queries."""

    cla: np.ndarray  # bool (S, S), R15
    ica: np.ndarray  # bool (S, S), R16
