"""Which probes to measure for a fit: training configurations drawn from the family itself.

Random α — half of them multiples of 1/8, whose channel counts the blocked layout takes
whole —, resolution, D_K and block, then the block's kernel in one role, stratified by role
and stride; ``separable`` probes time a block's depthwise and pointwise convs in one graph,
two kernels between the same two layout reorders as a single-kernel probe has, so the
reorders' cost is told apart from the kernels'. As nn-Meter samples from the prior
distribution of real models' configurations; ``neighbours`` gives the fine-grained samples
around configurations whose cross-validated error is above ``ERROR_THRESHOLD`` (nn-Meter's
adaptive sampling).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Final

ERROR_THRESHOLD: Final = 0.10
"""Relative error above which a training configuration gets fine-grained neighbours."""
SAMPLE_ALPHAS: Final = (0.2, 1.5)
SAMPLE_RESOLUTIONS: Final = (88, 288)
SAMPLE_KERNELS: Final = (3, 3, 5, 7)
SAMPLE_ROLES: Final = (
    ("depthwise", 0.26),
    ("pointwise", 0.26),
    ("separable", 0.16),
    ("standard", 0.18),
    ("stem", 0.07),
    ("head", 0.07),
)


@dataclass(frozen=True)
class ProbeConfig:
    """A probe to measure: one block's kernel(s) of the family at one α × resolution × D_K."""

    alpha: float
    resolution: int
    kernel: int
    block: int
    role: str


def sample_configs(count: int, seed: int = 0) -> list[ProbeConfig]:
    """``count`` probes drawn from the family, stratified so that a small count still
    covers every kind: roles in the proportions of ``SAMPLE_ROLES`` (largest remainder),
    blocks of the depthwise and standard roles alternating between stride 1 and stride 2,
    α log-uniform, resolution uniform (multiples of 8), D_K from 3, 5, 7 (3 twice as
    often); stem probes are block 0, head probes block 14."""
    from mobilenet.architecture import CONV_DEFS

    rng = random.Random(seed)
    stride_two = [i for i in range(1, 14) if CONV_DEFS[i].stride == 2]
    stride_one = [i for i in range(1, 14) if CONV_DEFS[i].stride == 1]
    quota = {role: int(count * weight) for role, weight in SAMPLE_ROLES}
    by_remainder = sorted(SAMPLE_ROLES, key=lambda rw: -(count * rw[1] - int(count * rw[1])))
    for role, _ in by_remainder[: count - sum(quota.values())]:
        quota[role] += 1
    configs: list[ProbeConfig] = []
    seen: set[ProbeConfig] = set()
    for role, _ in SAMPLE_ROLES:
        made = 0
        while made < quota[role]:
            if role == "stem":
                block = 0
            elif role == "head":
                block = 14
            elif role in ("depthwise", "separable", "standard"):
                block = rng.choice(stride_two if made % 2 else stride_one)
            else:
                block = rng.randint(1, 13)
            config = ProbeConfig(
                alpha=_sample_alpha(rng),
                resolution=rng.randrange(SAMPLE_RESOLUTIONS[0], SAMPLE_RESOLUTIONS[1] + 1, 8),
                kernel=(
                    rng.choice(SAMPLE_KERNELS)
                    if role in ("depthwise", "separable", "standard")
                    else 3
                ),
                block=block,
                role=role,
            )
            if config not in seen:
                seen.add(config)
                configs.append(config)
                made += 1
    rng.shuffle(configs)
    return configs


def _sample_alpha(rng: random.Random) -> float:
    """Half the draws a multiple of 1/8 (channel counts the blocked layout takes whole, as
    at the usual α of 0.25, 0.5, 0.75, 1.0), half log-uniform (any channel count)."""
    low, high = SAMPLE_ALPHAS
    if rng.random() < 0.5:
        return rng.randrange(math.ceil(low * 8), math.floor(high * 8) + 1) / 8
    return round(math.exp(rng.uniform(math.log(low), math.log(high))), 3)


def neighbours(config: ProbeConfig, count: int, seed: int = 0) -> list[ProbeConfig]:
    """Fine-grained samples around a configuration: same block, role and D_K, α within
    ±15 % and resolution within ±24 px."""
    rng = random.Random(f"{seed}:{config}")
    found: list[ProbeConfig] = []
    for _ in range(count * 4):
        if len(found) >= count:
            break
        alpha = round(min(2.0, max(0.1, config.alpha * rng.uniform(0.85, 1.15))), 3)
        resolution = max(32, config.resolution + rng.randrange(-24, 25, 8))
        candidate = ProbeConfig(alpha, resolution, config.kernel, config.block, config.role)
        if candidate != config and candidate not in found:
            found.append(candidate)
    return found
