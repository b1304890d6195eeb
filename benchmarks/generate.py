"""Wall time to generate the 16-cell grid and the standard baseline, and of `mnbench cost`.

Targets (issue "Model generator and cost model"): the whole grid in under 3 s on a 2-core
machine; `mnbench cost` on the 1.0/224 model in under 1 s.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mobilenet.generator import generate, write_models_csv
from mobilenet.spec import DEFAULT_ALPHAS, DEFAULT_RESOLUTIONS, ModelSpec


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        specs = [
            ModelSpec(alpha=a, resolution=r) for a in DEFAULT_ALPHAS for r in DEFAULT_RESOLUTIONS
        ]
        start = time.perf_counter()
        models = [generate(spec, out) for spec in specs]
        write_models_csv(out, models)
        grid_s = time.perf_counter() - start
        start = time.perf_counter()
        generate(ModelSpec(variant="standard"), out)
        standard_s = time.perf_counter() - start
        model = out / "mobilenet_v1_1.0_224.onnx"
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "harness", "cost", str(model)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        cost_cli_s = time.perf_counter() - start
        from mobilenet.cost import analyze_model, load_model_file

        start = time.perf_counter()
        analyze_model(load_model_file(model))
        cost_s = time.perf_counter() - start
    print(f"generate 16-cell grid (checked, written): {grid_s:.2f} s  (target < 3 s)")
    print(f"generate standard baseline 1.0/224 (29.3 M params): {standard_s:.2f} s")
    print(
        f"mnbench cost 1.0/224, whole command incl. interpreter start: {cost_cli_s:.2f} s "
        "(target < 1 s)"
    )
    print(f"cost model alone on 1.0/224: {cost_s * 1000:.0f} ms")


if __name__ == "__main__":
    main()
