"""A variant's prediction: its whole-model time with an interval, and each block's time.

``predict_variant`` lists the variant's kernels (in the layouts onnxruntime chose, when the
model was fitted with detection) and prices them with a fitted model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

from harness.predict.estimator import FittedModel
from harness.predict.kernels import variant_kernels

HEADERS: Final = ("model", "α", "res", "variant", "D_K", "MACs", "pred ms", "low ms", "high ms")
"""The table headers of ``Prediction.record``'s columns."""
BLOCK_HEADERS: Final = ("model", "block (0 stem, 14 head)", "pred ms")
"""The table headers of ``Prediction.block_records``' columns."""


@dataclass(frozen=True)
class Prediction:
    """A whole model's predicted time with its interval, and the time of each block."""

    alpha: float
    resolution: int
    variant: str
    kernel: int
    latency_ms: float
    low_ms: float
    high_ms: float
    macs: int
    blocks_ms: tuple[tuple[int, float], ...]
    """(block, ms): 0 the stem, 1-13 the blocks, 14 the head; the overhead is in none."""

    @property
    def name(self) -> str:
        from mobilenet.spec import ModelSpec

        return ModelSpec(self.alpha, self.resolution, self.variant, self.kernel).name  # type: ignore[arg-type]

    def record(self) -> dict[str, Any]:
        """Its row in ``mnbench predict``'s output (a table, CSV or JSON)."""
        return {
            "name": self.name,
            "alpha": self.alpha,
            "resolution": self.resolution,
            "variant": self.variant,
            "D_K": self.kernel,
            "macs": self.macs,
            "predicted_ms": self.latency_ms,
            "low_ms": self.low_ms,
            "high_ms": self.high_ms,
        }

    def block_records(self) -> list[dict[str, Any]]:
        """Its rows of ``--blocks``: one per block."""
        return [
            {"name": self.name, "block": block, "predicted_ms": ms} for block, ms in self.blocks_ms
        ]


def predict_variant(
    model: FittedModel,
    alpha: float,
    resolution: int,
    variant: str = "separable",
    kernel: int = 3,
) -> Prediction:
    """The predicted time of one variant (validated like a ModelSpec)."""
    from mobilenet.spec import ModelSpec

    ModelSpec(alpha, resolution, variant, kernel)  # type: ignore[arg-type]
    kernels, count, moved = variant_kernels(
        float(alpha), int(resolution), variant, int(kernel), model.provenance.detected
    )
    factor = model.factor
    blocks: dict[int, float] = {}
    for item in kernels:
        blocks[item.block] = blocks.get(item.block, 0.0) + model.in_context_ms(item) * factor
    total = model.predict(kernels, count, moved)
    low_rel, high_rel = model.interval
    return Prediction(
        alpha=float(alpha),
        resolution=int(resolution),
        variant=variant,
        kernel=int(kernel),
        latency_ms=total,
        low_ms=total / (1.0 + high_rel) if high_rel > -1 else 0.0,
        high_ms=total / (1.0 + low_rel) if low_rel > -1 else math.inf,
        macs=sum(item.macs for item in kernels),
        blocks_ms=tuple(sorted(blocks.items())),
    )
