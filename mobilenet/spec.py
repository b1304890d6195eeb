"""ModelSpec: the frozen value that names one MobileNetV1 variant.

Fields (docs/architecture.md): width multiplier alpha, input resolution (or rho =
resolution / 224), variant (``separable`` = MobileNet, ``standard`` = the paper's "Conv
MobileNet" of Table 4), kernel D_K, activation, batch-norm folding, precision and classes.
Validation happens at construction so a bad value never reaches the generator.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Literal, cast, get_args

from mobilenet.errors import UserError

Variant = Literal["separable", "standard"]
Activation = Literal["relu6", "relu"]
Precision = Literal["fp32", "int8", "fp16"]

VARIANTS: tuple[Variant, ...] = get_args(Variant)
ACTIVATIONS: tuple[Activation, ...] = get_args(Activation)
PRECISIONS: tuple[Precision, ...] = get_args(Precision)

DEFAULT_ALPHAS: tuple[float, ...] = (1.0, 0.75, 0.5, 0.25)
DEFAULT_RESOLUTIONS: tuple[int, ...] = (224, 192, 160, 128)
BASE_RESOLUTION = 224
MAX_ALPHA = 2.0
MIN_RESOLUTION = 32
MAX_RESOLUTION = 4096
KERNELS = range(1, 12, 2)


def resolution_from_rho(rho: float) -> int:
    """The paper's resolution multiplier rho as an input size: round(224 * rho)."""
    if not math.isfinite(rho) or rho <= 0:
        raise UserError(f"rho {rho!r} is not allowed: give a positive number such as 0.714")
    return round(BASE_RESOLUTION * rho)


@dataclass(frozen=True)
class ModelSpec:
    """One model of the grid. Its ``name`` is stable and readable."""

    alpha: float = 1.0
    resolution: int = 224
    variant: Variant = "separable"
    kernel: int = 3
    activation: Activation = "relu6"
    fold_bn: bool = True
    precision: Precision = "fp32"
    classes: int = 1000

    def __post_init__(self) -> None:
        alpha = self.alpha
        if (
            isinstance(alpha, bool)
            or not isinstance(alpha, (int, float))
            or not (math.isfinite(alpha) and 0 < alpha <= MAX_ALPHA)
        ):
            raise UserError(f"alpha {alpha!r} is not allowed: give a number with 0 < alpha <= 2")
        object.__setattr__(self, "alpha", float(alpha))
        res = self.resolution
        if isinstance(res, bool) or not isinstance(res, int):
            raise UserError(
                f"resolution {res!r} is not allowed: give a whole number of pixels >= 32"
            )
        if not MIN_RESOLUTION <= res <= MAX_RESOLUTION:
            raise UserError(f"resolution {res} is not allowed: give a whole number from 32 to 4096")
        if self.variant not in VARIANTS:
            raise UserError(
                f"variant {self.variant!r} is not allowed: choose {' or '.join(VARIANTS)}"
            )
        if isinstance(self.kernel, bool) or self.kernel not in KERNELS:
            raise UserError(f"kernel {self.kernel!r} is not allowed: give an odd size from 1 to 11")
        if self.activation not in ACTIVATIONS:
            raise UserError(f"activation {self.activation!r} is not allowed: choose relu6 or relu")
        if self.precision not in PRECISIONS:
            raise UserError(
                f"precision {self.precision!r} is not allowed: choose {', '.join(PRECISIONS)}"
            )
        if isinstance(self.classes, bool) or not isinstance(self.classes, int) or self.classes < 1:
            raise UserError(f"classes {self.classes!r} is not allowed: give a positive integer")

    @property
    def rho(self) -> float:
        return self.resolution / BASE_RESOLUTION

    @property
    def name(self) -> str:
        """``mobilenet_v1_0.75_160`` plus suffixes for every non-default field."""
        alpha = repr(self.alpha)  # shortest round-trip form: 1.0, 0.75, 0.5, 0.25
        parts = [f"mobilenet_v1_{alpha}_{self.resolution}"]
        if self.variant != "separable":
            parts.append(self.variant)
        if self.kernel != 3:
            parts.append(f"k{self.kernel}")
        if self.activation != "relu6":
            parts.append(self.activation)
        if not self.fold_bn:
            parts.append("bn")
        if self.precision != "fp32":
            parts.append(self.precision)
        if self.classes != 1000:
            parts.append(f"c{self.classes}")
        return "_".join(parts)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelSpec:
        data = json.loads(text)
        return cls(
            alpha=float(data["alpha"]),
            resolution=int(data["resolution"]),
            variant=cast(Variant, data["variant"]),
            kernel=int(data["kernel"]),
            activation=cast(Activation, data["activation"]),
            fold_bn=bool(data["fold_bn"]),
            precision=cast(Precision, data["precision"]),
            classes=int(data["classes"]),
        )
