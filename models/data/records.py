"""The in-memory form of a gait dataset: labelled silhouette sequences."""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SequenceRecord:
    """One walk: ``sils`` uint8 ``[N, 64, 64]`` of ``subject`` under ``condition`` (e.g. nm-01) seen from ``view``."""

    subject: str
    condition: str
    view: str
    sils: np.ndarray
