"""What training and prediction produced for one model: the input of every measure and figure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import torch

from reportgen.artifacts.source import ModelSource
from reportgen.artifacts.tables import history_frame
from reportgen.config.schema import ModelSection
from reportgen.evaluate import ranking
from reportgen.evaluate.attribution import AttributionMaps
from reportgen.evaluate.layers import LayerViews
from reportgen.train.loop import Divergence, EpochRecord


@dataclass(frozen=True)
class ModelOutcome:
    """One model, its predictions on the splits, and what its figures show.

    A model trained by the run or loaded from a checkpoint has all of it; a
    model evaluated from a predictions file has its test probabilities (and
    logits, when the file holds them) and none of what needs a network: no
    parameters, train accuracy, weights, validation logits or history.
    """

    name: str
    spec: ModelSection
    history: list[EpochRecord]  # empty for a model the run did not train
    divergence: Divergence | None
    parameters: int | None  # None: no network (a predictions file)
    proba: np.ndarray  # [N_test, classes] float32: what predictions.csv holds
    train_accuracy: float | None
    state_dict: dict[str, torch.Tensor] | None
    model: torch.nn.Module | None
    test_logits: np.ndarray | None  # [N_test, classes] float64; None: probabilities only
    val_logits: np.ndarray | None  # [N_val, classes] float64: temperature scaling is fitted on them
    views: LayerViews  # what the weights and activations figures show
    attributions: AttributionMaps | None = None  # the misclassified images shown, when on
    # False when the logits on a split were not all finite: those images got equal
    # probabilities, and nothing is measured from the logits or probabilities themselves.
    finite_logits: bool = True
    source: ModelSource = field(default_factory=ModelSource)  # trained, or from which file
    val_accuracy: float | None = None  # an untrained model's, from its one evaluation
    # One-vs-rest areas and curves of ``proba``, ranked once by the run (:meth:`one_vs_rest`).
    ranked: ranking.Ranked | None = None

    def one_vs_rest(self, y_test: np.ndarray) -> ranking.Ranked:
        """Return the one-vs-rest areas and curves: as the run ranked them, or ranked now."""
        return self.ranked if self.ranked is not None else ranking.ranked(self.proba, y_test)

    @property
    def predictions(self) -> np.ndarray:
        """Return each test image's predicted class: the most probable (the lowest on ties)."""
        return self.proba.argmax(axis=1)


def history_table(outcomes: Sequence[ModelOutcome]) -> pd.DataFrame:
    """Return the models' per-epoch history as ``history.csv`` holds it."""
    return history_frame({o.name: [asdict(record) for record in o.history] for o in outcomes})
