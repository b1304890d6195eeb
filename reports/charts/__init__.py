"""The report's charts: each a pure function of result frames to a ``Chart`` value.

One module per chart, each in three parts: its DATA (a pure function from frames to a small
frozen value: the points, series and figures the chart shows, or why there are none), its
DRAWING (that value to a matplotlib ``Figure``) and its READING (that value to the paragraph
under the chart). So a chart's numbers and words are tested without rendering. The modules:

- ``heatmap``: latency over α × resolution, one panel per run and configuration;
- ``vs_macs``: latency vs MACs on log–log axes, the fitted slope against the ideal slope 1;
- ``latency_accuracy``: latency vs ImageNet top-1 with the Pareto frontier;
- ``memory``: peak RSS and model bytes vs parameters;
- ``separable_ratio``: measured vs MAC separable/standard ratio (Howard et al. 2017, eq. 5);
- ``time_share``: per-layer-kind time share vs MAC share;
- ``layer_ratio``, ``channels``, ``roofline``: the layer probes (``layer_probes`` shared);
- ``predicted_vs_measured``: the latency model against held-out measurements.

``chart`` holds the ``Chart`` value, ``compose`` (a chart from its data, drawing and reading)
and the words every reading shares, ``series`` the rows
and series taken from the store's frames, ``style`` the palette, axis finish, log ticks and
rendering. The mission chart lives in ``reports/mission.py`` and uses the same parts.
"""

from __future__ import annotations

from reports.charts.channels import ratio_vs_channels_chart
from reports.charts.chart import Chart, alpha_text, cell_text, config_text, no_chart
from reports.charts.heatmap import latency_heatmap
from reports.charts.latency_accuracy import latency_accuracy, pareto_front
from reports.charts.layer_probes import LAYERS_HINT
from reports.charts.layer_ratio import layer_ratio_chart
from reports.charts.memory import memory_chart
from reports.charts.predicted_vs_measured import predicted_vs_measured_chart
from reports.charts.roofline import roofline_chart
from reports.charts.separable_ratio import prediction_chart
from reports.charts.series import measured, series_labels
from reports.charts.style import OKABE_ITO
from reports.charts.time_share import time_share_chart
from reports.charts.vs_macs import latency_vs_macs

__all__ = [
    "LAYERS_HINT",
    "OKABE_ITO",
    "Chart",
    "alpha_text",
    "cell_text",
    "config_text",
    "latency_accuracy",
    "latency_heatmap",
    "latency_vs_macs",
    "layer_ratio_chart",
    "measured",
    "memory_chart",
    "no_chart",
    "pareto_front",
    "predicted_vs_measured_chart",
    "prediction_chart",
    "ratio_vs_channels_chart",
    "roofline_chart",
    "series_labels",
    "time_share_chart",
]
