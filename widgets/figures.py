"""Static bokeh figures of the paper's views; each function returns a bokeh figure."""

from __future__ import annotations

import numpy as np
from bokeh.models import ColumnDataSource
from bokeh.plotting import figure

from dni.data.strokes import length_histogram


def stroke_length_figure(lengths, bin_width: int = 2, steps: int = 50, title: str | None = None):
    """Histogram of pen-stroke sequence lengths (paper Fig. 6), with the 50-step model window marked."""
    lengths = np.asarray(lengths)
    counts, edges = length_histogram(lengths, bin_width)
    source = ColumnDataSource({"left": edges[:-1], "right": edges[1:], "count": counts})
    inside = ((lengths >= 20) & (lengths <= 60)).mean() * 100 if len(lengths) else 0.0
    fig = figure(title=title or f"Stroke sequence lengths of {len(lengths):,} digits ({inside:.0f} % within 20–60 points)",
                 x_axis_label="number of pen points", y_axis_label="digits", height=300, width=600,
                 tools="pan,box_zoom,reset,save,hover", tooltips=[("points", "@left–@right"), ("digits", "@count")])
    fig.quad(left="left", right="right", bottom=0, top="count", source=source, fill_alpha=0.7, line_color="white")
    fig.ray(x=[steps], y=[0], length=0, angle=np.pi / 2, color="red", line_dash="dashed", legend_label=f"{steps} LSTM steps")
    fig.legend.location = "top_right"
    return fig
