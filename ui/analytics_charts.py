"""Chart builders for the Backtest, Drivers and Optimizer pages: frames in, Plotly figures out.

No ``st.*`` here. Colours come from :mod:`ui.charts` (the grade palette the user chose, and the
DEAR group colours), so these charts match the rest of the app.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from ui import charts

NEUTRAL = "#5b6770"
ACCENT = "#0072B2"
SUGGESTED = "#009E73"


def _layout(fig: go.Figure, *, title: str | None = None, height: int = 360) -> go.Figure:
    fig.update_layout(
        template="plotly_white",
        title={"text": title, "x": 0, "xanchor": "left"} if title else None,
        height=height,
        margin={"l": 10, "r": 10, "t": 50 if title else 30, "b": 10},
        font=charts.FONT,
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0, "title": None},
        hoverlabel={"font_size": 13},
    )
    return fig


def _pct(values: Sequence[float | None]) -> list[float | None]:
    return [None if v is None else 100 * v for v in values]


def bands_bars(
    bands: pl.DataFrame, colors: Mapping[str, str], *, title: str | None = None
) -> go.Figure:
    """Renewal rate and GRR per grade band, side by side (percent), coloured by grade."""
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("Renewal rate", "Gross revenue retention"),
        horizontal_spacing=0.12,
    )
    if bands.height == 0:
        return _layout(fig, title=title)
    grades = bands.get_column("grade").to_list()
    marker = [colors.get(g, NEUTRAL) for g in grades]
    for col, (field, label) in enumerate((("renewal_rate", "Renewal rate"), ("grr", "GRR")), 1):
        values = _pct(bands.get_column(field).to_list())
        fig.add_trace(
            go.Bar(
                x=grades,
                y=values,
                marker_color=marker,
                name=label,
                showlegend=False,
                text=[f"{v:.0f}%" if v is not None else "" for v in values],
                textposition="outside",
                customdata=bands.select("accounts", "renewed").rows(),
                hovertemplate="%{x}: %{y:.1f}%<br>%{customdata[0]} renewals, "
                "%{customdata[1]} renewed<extra></extra>",
            ),
            row=1,
            col=col,
        )
    fig.update_yaxes(range=[0, 110], ticksuffix="%")
    return _layout(fig, title=title, height=340)


def calibration_plot(calibration: pl.DataFrame) -> go.Figure:
    """Predicted renewal probability against the actual renewal rate per bin; the diagonal is
    perfect calibration."""
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, 100],
            y=[0, 100],
            mode="lines",
            name="Perfect calibration",
            line={"dash": "dot", "color": NEUTRAL},
            hoverinfo="skip",
        )
    )
    if calibration.height:
        fig.add_trace(
            go.Scatter(
                x=_pct(calibration.get_column("predicted").to_list()),
                y=_pct(calibration.get_column("actual").to_list()),
                mode="lines+markers",
                name="Renewals",
                line={"color": ACCENT},
                marker={"size": 9},
                customdata=calibration.select("accounts", "mean_score").rows(),
                hovertemplate="predicted %{x:.1f}%, actual %{y:.1f}%<br>%{customdata[0]} renewals, "
                "mean score %{customdata[1]:.1f}<extra></extra>",
            )
        )
    fig.update_xaxes(title="Predicted renewal probability", ticksuffix="%", range=[0, 101])
    fig.update_yaxes(title="Actual renewal rate", ticksuffix="%", range=[0, 101])
    return _layout(fig, height=360)


def lift_chart(lift: pl.DataFrame) -> go.Figure:
    """Churn lift per score decile (1 = lowest scores): how many times the average churn rate
    each decile has. A useful score puts the churn in the first deciles."""
    fig = go.Figure()
    if lift.height:
        values = lift.get_column("churn_lift").fill_null(0).to_list()
        fig.add_trace(
            go.Bar(
                x=lift.get_column("decile").to_list(),
                y=values,
                marker_color=ACCENT,
                name="Churn lift",
                customdata=lift.select("accounts", "churn_rate", "min_score", "max_score").rows(),
                hovertemplate="decile %{x}: %{y:.2f}x the average churn<br>"
                "churn rate %{customdata[1]:.1%} of %{customdata[0]} renewals<br>"
                "scores %{customdata[2]:.0f}-%{customdata[3]:.0f}<extra></extra>",
            )
        )
        fig.add_hline(
            y=1.0,
            line_dash="dot",
            line_color=NEUTRAL,
            annotation_text="average churn",
            annotation_position="top right",
        )
    fig.update_xaxes(title="Score decile (1 = lowest scores)", dtick=1)
    fig.update_yaxes(title="Churn rate / average churn rate")
    return _layout(fig, height=340)


def group_auc_bars(groups: pl.DataFrame, overall_auc: float | None) -> go.Figure:
    """AUC of each group score with its bootstrap interval, beside the overall score's."""
    fig = go.Figure()
    if groups.height:
        labels = groups.get_column("label").to_list()
        auc = groups.get_column("auc").to_list()
        lo = groups.get_column("auc_low").to_list()
        hi = groups.get_column("auc_high").to_list()
        fig.add_trace(
            go.Bar(
                x=labels,
                y=auc,
                marker_color=[
                    charts.group_color(g, i) for i, g in enumerate(groups.get_column("group"))
                ],
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [
                        (h - a) if h is not None and a is not None else 0
                        for a, h in zip(auc, hi, strict=True)
                    ],
                    "arrayminus": [
                        (a - lw) if lw is not None and a is not None else 0
                        for a, lw in zip(auc, lo, strict=True)
                    ],
                },
                hovertemplate="%{x}: AUC %{y:.3f}<extra></extra>",
                name="AUC",
            )
        )
    if overall_auc is not None:
        fig.add_hline(
            y=overall_auc,
            line_dash="dash",
            line_color=NEUTRAL,
            annotation_text=f"overall score {overall_auc:.3f}",
            annotation_position="top left",
        )
    fig.add_hline(
        y=0.5,
        line_dash="dot",
        line_color="#bbbbbb",
        annotation_text="coin flip",
        annotation_position="bottom right",
    )
    fig.update_yaxes(title="AUC", range=[0.3, 1.0])
    return _layout(fig, height=340)


def coefficient_plot(
    table: pl.DataFrame,
    *,
    value: str,
    low: str,
    high: str,
    label: str = "label",
    x_title: str,
    colors: Sequence[str] | None = None,
) -> go.Figure:
    """Horizontal dots with 95% interval whiskers, one row per term; zero is marked."""
    fig = go.Figure()
    if table.height:
        t = table.filter(pl.col(value).is_not_null()).reverse()
        x = t.get_column(value).to_list()
        fig.add_trace(
            go.Scatter(
                x=x,
                y=t.get_column(label).to_list(),
                mode="markers",
                marker={"size": 11, "color": list(colors)[::-1] if colors else ACCENT},
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": [h - v for v, h in zip(x, t.get_column(high).to_list(), strict=True)],
                    "arrayminus": [
                        v - lw for v, lw in zip(x, t.get_column(low).to_list(), strict=True)
                    ],
                },
                customdata=t.select(low, high).rows(),
                hovertemplate="%{y}: %{x:+.2f} (95% CI %{customdata[0]:+.2f} to "
                "%{customdata[1]:+.2f})<extra></extra>",
                showlegend=False,
            )
        )
    fig.add_vline(x=0, line_dash="dot", line_color=NEUTRAL)
    fig.update_xaxes(title=x_title, zeroline=False)
    return _layout(fig, height=max(240, 60 + 45 * table.height))


def weights_compare(weights: pl.DataFrame, *, level: str = "group") -> go.Figure:
    """Current vs suggested weights (normalised to 100 per level) with the bootstrap 5-95%
    range of the suggestion."""
    w = weights.filter(pl.col("level") == level)
    fig = go.Figure()
    if w.height == 0:
        return _layout(fig)
    labels = w.get_column("label").to_list()
    if level == "measure":
        labels = [f"{g} · {m}" for g, m in zip(w.get_column("group"), labels, strict=True)]
    fig.add_trace(
        go.Bar(
            x=w.get_column("current").to_list(),
            y=labels,
            orientation="h",
            name="Current",
            marker_color="#b0b8bf",
            hovertemplate="%{y}: current %{x:.0f}<extra></extra>",
        )
    )
    sug = w.get_column("suggested").to_list()
    lo = w.get_column("boot_low").to_list()
    hi = w.get_column("boot_high").to_list()
    has_boot = all(v is not None for v in lo)
    fig.add_trace(
        go.Bar(
            x=sug,
            y=labels,
            orientation="h",
            name="Suggested",
            marker_color=SUGGESTED,
            error_x={
                "type": "data",
                "symmetric": False,
                "array": [max(0.0, h - s) for s, h in zip(sug, hi, strict=True)],
                "arrayminus": [max(0.0, s - lw) for s, lw in zip(sug, lo, strict=True)],
            }
            if has_boot
            else None,
            hovertemplate="%{y}: suggested %{x:.0f}<extra></extra>",
        )
    )
    fig.update_layout(barmode="group", yaxis={"autorange": "reversed"})
    fig.update_xaxes(
        title="Weight (out of 100" + (" within the group)" if level == "measure" else ")")
    )
    return _layout(fig, height=max(260, 80 + 48 * w.height))


def cv_folds(folds: pl.DataFrame) -> go.Figure:
    """Out-of-sample AUC per fold: current, suggested and the unconstrained logistic model."""
    fig = go.Figure()
    if folds.height:
        x = [f"fold {f}" for f in folds.get_column("fold").to_list()]
        for col, name, color in (
            ("current_auc", "Current", "#b0b8bf"),
            ("suggested_auc", "Suggested", SUGGESTED),
            ("logistic_auc", "Logistic (unconstrained)", NEUTRAL),
        ):
            fig.add_trace(
                go.Bar(
                    x=x,
                    y=folds.get_column(col).to_list(),
                    name=name,
                    marker_color=color,
                    hovertemplate=name + ": %{y:.3f}<extra></extra>",
                )
            )
    fig.update_layout(barmode="group")
    fig.update_yaxes(title="AUC on newer renewals", range=[0.5, 1.0])
    return _layout(fig, height=320)
