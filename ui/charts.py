"""Chart builders: a Polars frame in, a Plotly figure out. No ``st.*`` here.

One palette for grades everywhere (the scorecard's band colours, or a red-yellow-green ramp),
and a colour-blind-safe alternative built on the Okabe-Ito colours, chosen by the user in the
sidebar. Every builder labels its axes in words, formats hover text for people (scores with one
decimal, ARR as currency) and keeps grade order low -> high.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from enum import StrEnum

import plotly.graph_objects as go
import polars as pl
from plotly.colors import sample_colorscale

from ui import format as fmt


class Palette(StrEnum):
    STANDARD = "standard"
    COLORBLIND = "colorblind"


NO_GRADE = "No score"
NO_GRADE_COLOR = "#9e9e9e"

# Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour
# vision deficiency.
OKABE_ITO = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#D55E00",  # vermillion
    "#F0E442",  # yellow
    "#000000",  # black
)

_STANDARD_RYG = {"red": "#d1495b", "yellow": "#edae49", "green": "#00a878"}
# Colour-blind safe: vermillion, orange and blue (green and red are the pair that fails).
_COLORBLIND_RYG = {"red": "#D55E00", "yellow": "#E69F00", "green": "#0072B2"}
_STANDARD_RAMP = ["#d1495b", "#edae49", "#00a878"]
_COLORBLIND_RAMP = ["#D55E00", "#E69F00", "#F0E442", "#56B4E9", "#0072B2"]

GROUP_COLORS = {
    "deployment": "#0072B2",
    "engagement": "#CC79A7",
    "adoption": "#009E73",
    "roi": "#E69F00",
}

FONT = {"family": "Inter, Segoe UI, Helvetica, Arial, sans-serif", "size": 13}


# --------------------------------------------------------------------------- text


def esc(text: object) -> str:
    """Text from users or data (names, grade and group labels) made literal for Plotly, which
    renders a subset of HTML in names, labels and hover text; entities display as typed."""
    return html.escape(str(text), quote=False)


def _escs(values: Sequence[object]) -> list[str | None]:
    return [None if v is None else esc(v) for v in values]


# --------------------------------------------------------------------------- palettes


def grade_colors(
    labels: Sequence[str],
    *,
    palette: Palette | str = Palette.STANDARD,
    band_colors: Sequence[str | None] | None = None,
) -> dict[str, str]:
    """A colour per grade label; ``labels`` ordered from the lowest band to the highest.

    Red/Yellow/Green get their named colours; other schemes get an even ramp from the worst to
    the best colour. In the standard palette a band's own colour (from the scorecard) wins.
    The colour-blind palette ignores scorecard colours: they were not chosen for it.
    ``NO_GRADE`` is always grey."""
    palette = Palette(palette)
    named = _COLORBLIND_RYG if palette is Palette.COLORBLIND else _STANDARD_RYG
    ramp = _COLORBLIND_RAMP if palette is Palette.COLORBLIND else _STANDARD_RAMP
    n = len(labels)
    points = [i / (n - 1) for i in range(n)] if n > 1 else [1.0]
    sampled = sample_colorscale(_scale(ramp), points, colortype="rgb") if n else []
    out: dict[str, str] = {}
    for i, label in enumerate(labels):
        own = band_colors[i] if band_colors and i < len(band_colors) else None
        if palette is Palette.STANDARD and own:
            out[label] = own
        elif label.strip().lower() in named and _is_ryg(labels):
            out[label] = named[label.strip().lower()]
        else:
            out[label] = sampled[i]
    out[NO_GRADE] = NO_GRADE_COLOR
    return out


def _is_ryg(labels: Sequence[str]) -> bool:
    return {x.strip().lower() for x in labels} <= set(_STANDARD_RYG)


def _scale(colors: Sequence[str]) -> list[list[float | str]]:
    n = len(colors)
    return [[i / (n - 1), c] for i, c in enumerate(colors)]


def score_colorscale(palette: Palette | str = Palette.STANDARD) -> list[list[float | str]]:
    """A continuous 0-100 colour scale matching the grade palette (for heatmaps)."""
    palette = Palette(palette)
    return _scale(_COLORBLIND_RAMP if palette is Palette.COLORBLIND else _STANDARD_RAMP)


def group_color(group_id: str, index: int = 0) -> str:
    return GROUP_COLORS.get(group_id, OKABE_ITO[index % len(OKABE_ITO)])


def _layout(
    fig: go.Figure, *, title: str | None = None, height: int = 360, **kw: object
) -> go.Figure:
    fig.update_layout(
        template="plotly_white",
        title={"text": title, "x": 0, "xanchor": "left"} if title else None,
        height=height,
        margin={"l": 10, "r": 10, "t": 50 if title else 20, "b": 10},
        font=FONT,
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0, "title": None},
        hoverlabel={"font_size": 13},
        **kw,
    )
    return fig


def _ordered(present: Sequence[str | None], order: Sequence[str]) -> list[str]:
    """Grade labels low -> high, the labels not in ``order`` (other schemes) after them, and
    'No score' last."""
    seen = [g if g is not None else NO_GRADE for g in present]
    known = [g for g in order if g in seen]
    rest = sorted({g for g in seen if g not in order and g != NO_GRADE})
    tail = [NO_GRADE] if NO_GRADE in seen else []
    return [*known, *rest, *tail]


def _grades(frame: pl.DataFrame, col: str = "grade") -> pl.DataFrame:
    return frame.with_columns(pl.col(col).fill_null(NO_GRADE))


# --------------------------------------------------------------------------- overview


def grade_mix_bar(mix: pl.DataFrame, colors: Mapping[str, str], order: Sequence[str]) -> go.Figure:
    """Two 100% bars, by account count and by ARR. ``mix``: ``grade``, ``accounts``, ``arr``."""
    mix = _grades(mix)
    total_n = float(mix.get_column("accounts").sum() or 0)
    total_arr = float(mix.get_column("arr").sum() or 0)
    fig = go.Figure()
    for grade in _ordered(mix.get_column("grade").to_list(), order):
        row = mix.filter(pl.col("grade") == grade)
        n = float(row.get_column("accounts").sum())
        arr = float(row.get_column("arr").sum())
        share_n = n / total_n if total_n else 0.0
        share_arr = arr / total_arr if total_arr else 0.0
        fig.add_bar(
            name=esc(grade),
            y=["Accounts", "ARR"],
            x=[share_n, share_arr],
            orientation="h",
            marker_color=colors.get(grade, NO_GRADE_COLOR),
            text=[fmt.percent(share_n, digits=0), fmt.percent(share_arr, digits=0)],
            textposition="inside",
            customdata=[
                [fmt.number(n), fmt.percent(share_n)],
                [fmt.currency(arr), fmt.percent(share_arr)],
            ],
            hovertemplate="<b>%{fullData.name}</b><br>%{y}: %{customdata[0]} (%{customdata[1]})"
            "<extra></extra>",
        )
    fig.update_layout(barmode="stack")
    fig.update_xaxes(tickformat=".0%", range=[0, 1], title=None)
    fig.update_yaxes(autorange="reversed", title=None)
    return _layout(fig, height=210)


def score_trend(
    trend: pl.DataFrame,
    *,
    y: str = "score",
    title: str | None = None,
    y_title: str = "Average score",
    band_edges: Sequence[tuple[str, float, float]] = (),
    colors: Mapping[str, str] | None = None,
) -> go.Figure:
    """A score over time (``as_of``, ``y``), optionally over shaded grade bands."""
    fig = go.Figure()
    _add_bands(fig, band_edges, colors or {})
    fig.add_scatter(
        x=trend.get_column("as_of").to_list(),
        y=trend.get_column(y).to_list(),
        mode="lines+markers",
        name=y_title,
        line={"color": "#1f2937", "width": 2.5},
        marker={"size": 6},
        hovertemplate="%{x|%d %b %Y}<br>" + y_title + ": %{y:.1f}<extra></extra>",
    )
    fig.update_yaxes(title=y_title, range=[0, 100] if band_edges else None)
    fig.update_xaxes(title=None)
    return _layout(fig, title=title, height=300, showlegend=False)


def _add_bands(
    fig: go.Figure, band_edges: Sequence[tuple[str, float, float]], colors: Mapping[str, str]
) -> None:
    for label, lower, upper in band_edges:
        fig.add_hrect(
            y0=lower,
            y1=upper,
            fillcolor=colors.get(label, NO_GRADE_COLOR),
            opacity=0.12,
            line_width=0,
            layer="below",
            annotation_text=esc(label),
            annotation_position="top left",
            annotation_font={"size": 11, "color": "#555"},
        )


def movers_bar(movers: pl.DataFrame, *, label: str = "name", change: str = "change") -> go.Figure:
    """Largest rises and drops as diverging horizontal bars (points of overall score)."""
    movers = movers.sort(change)
    values = movers.get_column(change).to_list()
    fig = go.Figure(
        go.Bar(
            x=values,
            y=_escs(movers.get_column(label).to_list()),
            orientation="h",
            marker_color=["#D55E00" if (v or 0) < 0 else "#0072B2" for v in values],
            text=[fmt.signed(v) for v in values],
            textposition="outside",
            hovertemplate="<b>%{y}</b><br>change: %{x:+.1f} points<extra></extra>",
        )
    )
    fig.update_xaxes(title="Change in score (points)", zeroline=True, zerolinecolor="#888")
    fig.update_yaxes(title=None, automargin=True)
    return _layout(fig, height=max(240, 28 * movers.height + 80), showlegend=False)


# --------------------------------------------------------------------------- distributions


def score_histogram(
    scores: pl.DataFrame,
    colors: Mapping[str, str],
    order: Sequence[str],
    *,
    score_col: str = "score",
    grade_col: str = "grade",
    title: str | None = None,
    x_title: str = "Score",
) -> go.Figure:
    """Histogram of scores in 5-point bins, stacked and coloured by grade."""
    scores = _grades(scores.filter(pl.col(score_col).is_not_null()), grade_col)
    fig = go.Figure()
    for grade in _ordered(scores.get_column(grade_col).unique().to_list(), order):
        part = scores.filter(pl.col(grade_col) == grade)
        fig.add_histogram(
            x=part.get_column(score_col).to_list(),
            name=esc(grade),
            marker_color=colors.get(grade, NO_GRADE_COLOR),
            xbins={"start": 0, "end": 100.0001, "size": 5},
            hovertemplate="<b>%{fullData.name}</b><br>score %{x}<br>%{y} accounts<extra></extra>",
        )
    fig.update_layout(barmode="stack", bargap=0.05)
    fig.update_xaxes(title=x_title, range=[0, 100])
    fig.update_yaxes(title="Accounts")
    return _layout(fig, title=title, height=320)


def score_violin(
    scores: pl.DataFrame,
    *,
    split: str,
    score_col: str,
    split_title: str,
    score_title: str,
    color: str = "#0072B2",
) -> go.Figure:
    """One violin (with box and points hidden) per value of ``split``."""
    scores = scores.filter(pl.col(score_col).is_not_null())
    fig = go.Figure()
    for value in sorted(scores.get_column(split).fill_null("(none)").unique().to_list()):
        part = scores.filter(pl.col(split).fill_null("(none)") == value)
        fig.add_violin(
            y=part.get_column(score_col).to_list(),
            name=esc(value),
            box_visible=True,
            meanline_visible=True,
            points=False,
            line_color=color,
            fillcolor=color,
            opacity=0.55,
            hoveron="violins+kde",
            spanmode="hard",
        )
    fig.update_yaxes(title=score_title, range=[0, 100])
    fig.update_xaxes(title=split_title)
    return _layout(fig, height=360, showlegend=False)


def grade_mix_by(
    mix: pl.DataFrame,
    colors: Mapping[str, str],
    order: Sequence[str],
    *,
    split: str,
    split_title: str,
    value: str = "accounts",
) -> go.Figure:
    """100% horizontal bars of the grade mix per value of ``split``.
    ``mix``: ``split``, ``grade``, ``value``."""
    mix = _grades(mix).with_columns(pl.col(split).cast(pl.Utf8).fill_null("(none)"))
    totals = mix.group_by(split).agg(pl.col(value).sum().alias("_total"))
    mix = mix.join(totals, on=split).with_columns(
        (pl.col(value) / pl.col("_total")).fill_nan(0.0).alias("_share")
    )
    cats = sorted(mix.get_column(split).unique().to_list())
    fig = go.Figure()
    value_text = fmt.currency if value == "arr" else fmt.number
    for grade in _ordered(mix.get_column("grade").unique().to_list(), order):
        part = mix.filter(pl.col("grade") == grade)
        share = dict(
            zip(part.get_column(split).to_list(), part.get_column("_share").to_list(), strict=True)
        )
        raw = dict(
            zip(part.get_column(split).to_list(), part.get_column(value).to_list(), strict=True)
        )
        fig.add_bar(
            name=esc(grade),
            y=_escs(cats),
            x=[share.get(c, 0.0) for c in cats],
            orientation="h",
            marker_color=colors.get(grade, NO_GRADE_COLOR),
            customdata=[[value_text(raw.get(c, 0)), fmt.percent(share.get(c, 0.0))] for c in cats],
            hovertemplate="<b>%{fullData.name}</b><br>%{y}: %{customdata[0]} (%{customdata[1]})"
            "<extra></extra>",
        )
    fig.update_layout(barmode="stack")
    fig.update_xaxes(
        tickformat=".0%",
        range=[0, 1],
        title="Share of " + ("ARR" if value == "arr" else "accounts"),
    )
    fig.update_yaxes(
        title=split_title, automargin=True, categoryorder="array", categoryarray=_escs(cats[::-1])
    )
    return _layout(fig, height=max(260, 34 * len(cats) + 120))


def group_heatmap(
    frame: pl.DataFrame,
    groups: Sequence[tuple[str, str]],
    *,
    label: str = "name",
    palette: Palette | str = Palette.STANDARD,
) -> go.Figure:
    """Accounts (rows, in frame order) x DEAR groups (columns), cells coloured 0-100.
    ``groups``: ``(id, label)`` pairs; a missing score is an empty cell."""
    ids = [g for g, _ in groups if g in frame.columns]
    names = [lbl for g, lbl in groups if g in frame.columns]
    z = [
        [None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in row]
        for row in frame.select(ids).rows()
    ]
    text = [[fmt.score(v, digits=0) if v is not None else "" for v in row] for row in z]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=_escs(names),
            y=_escs(frame.get_column(label).to_list()),
            zmin=0,
            zmax=100,
            colorscale=score_colorscale(palette),
            text=text,
            texttemplate="%{text}",
            hovertemplate="<b>%{y}</b><br>%{x}: %{z:.1f}<extra></extra>",
            colorbar={"title": "Score"},
            xgap=2,
            ygap=1,
        )
    )
    fig.update_yaxes(autorange="reversed", automargin=True, title=None)
    fig.update_xaxes(side="top", title=None)
    return _layout(fig, height=max(300, 22 * frame.height + 100))


def outcomes_vs_experience(
    frame: pl.DataFrame,
    colors: Mapping[str, str],
    order: Sequence[str],
    *,
    threshold: float = 50.0,
) -> go.Figure:
    """Scatter of the outcomes score (x) against the experience score (y), one point per
    account, coloured by grade, sized by ARR; dashed lines at ``threshold`` split quadrants.
    ``frame``: ``name``, ``outcomes_score``, ``experience_score``, ``grade``, ``arr``."""
    frame = _grades(
        frame.filter(
            pl.col("outcomes_score").is_not_null() & pl.col("experience_score").is_not_null()
        )
    )
    top = frame.get_column("arr").max() if frame.height else None
    max_arr = float(top) if isinstance(top, int | float) and top > 0 else 1.0
    fig = go.Figure()
    for grade in _ordered(frame.get_column("grade").unique().to_list(), order):
        part = frame.filter(pl.col("grade") == grade)
        arr = part.get_column("arr").fill_null(0.0).to_list()
        fig.add_scatter(
            x=part.get_column("outcomes_score").to_list(),
            y=part.get_column("experience_score").to_list(),
            mode="markers",
            name=esc(grade),
            marker={
                "color": colors.get(grade, NO_GRADE_COLOR),
                "size": [6 + 22 * math.sqrt(max(a, 0.0) / max_arr) for a in arr],
                "line": {"width": 0.5, "color": "white"},
                "opacity": 0.8,
            },
            customdata=[
                [esc(n), fmt.currency(a)]
                for n, a in zip(part.get_column("name").to_list(), arr, strict=True)
            ],
            hovertemplate="<b>%{customdata[0]}</b><br>outcomes %{x:.1f} · experience %{y:.1f}"
            "<br>ARR %{customdata[1]}<extra>%{fullData.name}</extra>",
        )
    for axis in ("x", "y"):
        fig.add_shape(
            type="line",
            **(
                {"x0": threshold, "x1": threshold, "y0": 0, "y1": 100}
                if axis == "x"
                else {"y0": threshold, "y1": threshold, "x0": 0, "x1": 100}
            ),
            line={"dash": "dash", "color": "#888", "width": 1},
        )
    notes = [
        (97, 97, "right", "top", "Value and relationship"),
        (3, 97, "left", "top", "Liked, not getting value"),
        (97, 3, "right", "bottom", "Getting value, cool relationship"),
        (3, 3, "left", "bottom", "At risk on both"),
    ]
    for x, y, xa, ya, text in notes:
        fig.add_annotation(
            x=x,
            y=y,
            text=text,
            showarrow=False,
            xanchor=xa,
            yanchor=ya,
            font={"size": 11, "color": "#666"},
        )
    # a little room past 0 and 100 so that markers on the edges are whole
    fig.update_xaxes(title="Outcomes score (Deployment, Adoption, ROI)", range=[-3, 103])
    fig.update_yaxes(title="Experience score (Engagement, surveys)", range=[-3, 103])
    return _layout(fig, height=460)


# --------------------------------------------------------------------------- trends


def grade_mix_area(
    mix: pl.DataFrame,
    colors: Mapping[str, str],
    order: Sequence[str],
    *,
    value: str = "accounts",
) -> go.Figure:
    """Stacked area of the grade mix over time. ``mix``: ``as_of``, ``grade``, ``value``."""
    mix = _grades(mix).sort("as_of")
    dates = mix.get_column("as_of").unique().sort().to_list()
    fig = go.Figure()
    is_arr = value == "arr"
    for grade in _ordered(mix.get_column("grade").unique().to_list(), order):
        part = mix.filter(pl.col("grade") == grade)
        by_date = dict(
            zip(part.get_column("as_of").to_list(), part.get_column(value).to_list(), strict=True)
        )
        ys = [by_date.get(d, 0) or 0 for d in dates]
        fig.add_scatter(
            x=dates,
            y=ys,
            name=esc(grade),
            mode="lines",
            stackgroup="grades",
            line={"width": 0.5, "color": colors.get(grade, NO_GRADE_COLOR)},
            fillcolor=colors.get(grade, NO_GRADE_COLOR),
            customdata=[fmt.currency(v) if is_arr else fmt.number(v) for v in ys],
            hovertemplate="<b>%{fullData.name}</b> %{x|%d %b %Y}: %{customdata}<extra></extra>",
        )
    fig.update_yaxes(title="ARR" if is_arr else "Accounts", tickprefix="$" if is_arr else None)
    fig.update_xaxes(title=None)
    return _layout(fig, height=340, hovermode="x unified")


def group_trends(trend: pl.DataFrame, groups: Sequence[tuple[str, str]]) -> go.Figure:
    """Average score per DEAR group over time. ``trend``: ``as_of``, ``group``, ``score``."""
    fig = go.Figure()
    for i, (gid, label) in enumerate(groups):
        part = trend.filter(pl.col("group") == gid).sort("as_of")
        if part.height == 0:
            continue
        fig.add_scatter(
            x=part.get_column("as_of").to_list(),
            y=part.get_column("score").to_list(),
            name=esc(label),
            mode="lines",
            line={"color": group_color(gid, i), "width": 2.5},
            hovertemplate="<b>%{fullData.name}</b> %{x|%d %b %Y}: %{y:.1f}<extra></extra>",
        )
    fig.update_yaxes(title="Average score")
    fig.update_xaxes(title=None)
    return _layout(fig, height=340, hovermode="x unified")


def transitions_sankey(
    transitions: pl.DataFrame,
    colors: Mapping[str, str],
    order: Sequence[str],
    *,
    from_label: str,
    to_label: str,
    value: str = "accounts",
) -> go.Figure:
    """Grade transitions between two dates. ``transitions``: ``from_grade``, ``to_grade``,
    ``value``; nulls (not scored at a date) become 'No score'."""
    t = transitions.with_columns(
        pl.col("from_grade").fill_null(NO_GRADE), pl.col("to_grade").fill_null(NO_GRADE)
    ).filter(pl.col(value) > 0)
    left = _ordered(t.get_column("from_grade").unique().to_list(), order)
    right = _ordered(t.get_column("to_grade").unique().to_list(), order)
    labels = [f"{g} ({from_label})" for g in left] + [f"{g} ({to_label})" for g in right]
    node_colors = [colors.get(g, NO_GRADE_COLOR) for g in [*left, *right]]
    src, dst, vals, link_colors = [], [], [], []
    is_arr = value == "arr"
    custom = []
    for row in t.iter_rows(named=True):
        src.append(left.index(row["from_grade"]))
        dst.append(len(left) + right.index(row["to_grade"]))
        vals.append(row[value])
        link_colors.append(_rgba(colors.get(row["to_grade"], NO_GRADE_COLOR), 0.35))
        custom.append(fmt.currency(row[value]) if is_arr else fmt.number(row[value]))
    fig = go.Figure(
        go.Sankey(
            arrangement="snap",
            node={
                "label": _escs(labels),
                "color": node_colors,
                "pad": 18,
                "thickness": 18,
                "hovertemplate": "%{label}: %{value:,.0f}<extra></extra>",
            },
            link={
                "source": src,
                "target": dst,
                "value": vals,
                "color": link_colors,
                "customdata": custom,
                "hovertemplate": "%{source.label} → %{target.label}: %{customdata}<extra></extra>",
            },
        )
    )
    return _layout(fig, height=420)


def _rgba(color: str, alpha: float) -> str:
    if color.startswith("rgb("):
        return color.replace("rgb(", "rgba(").replace(")", f", {alpha})")
    c = color.lstrip("#")
    if len(c) != 6:
        return color
    r, g, b = (int(c[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r}, {g}, {b}, {alpha})"


# --------------------------------------------------------------------------- customer 360


def account_history(
    history: pl.DataFrame,
    band_edges: Sequence[tuple[str, float, float]],
    colors: Mapping[str, str],
    *,
    groups: Sequence[tuple[str, str]] = (),
) -> go.Figure:
    """An account's overall score over time over shaded grade bands, with its group scores
    as thin lines. ``history``: ``as_of``, ``score``, ``grade`` and optional group columns."""
    history = history.sort("as_of")
    fig = go.Figure()
    _add_bands(fig, band_edges, colors)
    for i, (gid, label) in enumerate(groups):
        if gid not in history.columns:
            continue
        fig.add_scatter(
            x=history.get_column("as_of").to_list(),
            y=history.get_column(gid).to_list(),
            name=esc(label),
            mode="lines",
            line={"color": group_color(gid, i), "width": 1.2, "dash": "dot"},
            hovertemplate="%{fullData.name}: %{y:.1f}<extra></extra>",
        )
    grades = (
        history.get_column("grade").fill_null(NO_GRADE).to_list()
        if "grade" in history.columns
        else []
    )
    fig.add_scatter(
        x=history.get_column("as_of").to_list(),
        y=history.get_column("score").to_list(),
        name="Overall",
        mode="lines+markers",
        line={"color": "#1f2937", "width": 3},
        marker={
            "size": 7,
            "color": [colors.get(g, NO_GRADE_COLOR) for g in grades] or "#1f2937",
            "line": {"width": 1, "color": "#1f2937"},
        },
        customdata=_escs(grades),
        hovertemplate="%{x|%d %b %Y}<br><b>Overall %{y:.1f}</b> (%{customdata})<extra></extra>",
    )
    fig.update_yaxes(title="Score", range=[0, 100])
    fig.update_xaxes(title=None)
    return _layout(fig, height=340, hovermode="x unified")


def explanation_waterfall(
    parts: pl.DataFrame,
    *,
    start: float,
    end: float,
    start_label: str,
    end_label: str,
) -> go.Figure:
    """The score at the first date, each named part of the change, the score at the second.
    ``parts``: ``label``, ``amount`` (points); the parts add up to ``end - start``."""
    labels = [start_label, *parts.get_column("label").to_list(), end_label]
    amounts = parts.get_column("amount").to_list()
    fig = go.Figure(
        go.Waterfall(
            orientation="v",
            x=_escs(labels),
            y=[start, *amounts, end],
            measure=["absolute", *["relative"] * len(amounts), "total"],
            text=[fmt.score(start), *[fmt.signed(a) for a in amounts], fmt.score(end)],
            textposition="outside",
            increasing={"marker": {"color": "#0072B2"}},
            decreasing={"marker": {"color": "#D55E00"}},
            totals={"marker": {"color": "#6b7280"}},
            connector={"line": {"color": "#bbb", "width": 1}},
            hovertemplate="%{x}: %{text}<extra></extra>",
        )
    )
    fig.update_yaxes(title="Score")
    fig.update_xaxes(title=None, tickangle=-30, automargin=True)
    return _layout(fig, height=420, showlegend=False)


def measure_contributions(frame: pl.DataFrame, colors: Mapping[str, str]) -> go.Figure:
    """Points each measure adds to the overall score, as horizontal bars coloured by group.
    ``frame``: ``label``, ``group``, ``group_label``, ``contribution``, ``score``, ``weight``."""
    frame = frame.sort("contribution")
    fig = go.Figure()
    for gid in frame.get_column("group").unique(maintain_order=True).to_list():
        part = frame.filter(pl.col("group") == gid)
        glabel = part.get_column("group_label").first()
        fig.add_bar(
            name=esc(glabel),
            x=part.get_column("contribution").to_list(),
            y=_escs(part.get_column("label").to_list()),
            orientation="h",
            marker_color=colors.get(gid, group_color(gid)),
            customdata=[
                [fmt.score(s), fmt.percent(w)] for s, w in part.select("score", "weight").rows()
            ],
            hovertemplate="<b>%{y}</b><br>adds %{x:.1f} points"
            "<br>score %{customdata[0]} × weight %{customdata[1]}<extra></extra>",
        )
    fig.update_xaxes(title="Points of the overall score")
    fig.update_yaxes(
        title=None,
        automargin=True,
        categoryorder="array",
        categoryarray=_escs(frame.get_column("label").to_list()),
    )
    return _layout(fig, height=max(260, 26 * frame.height + 90))


# --------------------------------------------------------------------------- data quality


def coverage_bars(quality: pl.DataFrame, *, label: str = "metric") -> go.Figure:
    """Per metric: the share of accounts with a value, and the stale share within it.
    ``quality``: ``label``, ``coverage`` (0-1), ``stale_share`` (0-1)."""
    quality = quality.sort("coverage")
    fig = go.Figure()
    fig.add_bar(
        name="Accounts with a value",
        x=quality.get_column("coverage").to_list(),
        y=_escs(quality.get_column(label).to_list()),
        orientation="h",
        marker_color="#0072B2",
        hovertemplate="<b>%{y}</b><br>coverage %{x:.1%}<extra></extra>",
    )
    if "stale_share" in quality.columns:
        fig.add_bar(
            name="Stale",
            x=quality.get_column("stale_share").to_list(),
            y=_escs(quality.get_column(label).to_list()),
            orientation="h",
            marker_color="#E69F00",
            hovertemplate="<b>%{y}</b><br>stale %{x:.1%}<extra></extra>",
        )
    fig.update_layout(barmode="group")
    fig.update_xaxes(tickformat=".0%", range=[0, 1], title=None)
    fig.update_yaxes(title=None, automargin=True)
    return _layout(fig, height=max(260, 30 * quality.height + 100))
