"""The demo portfolio: a seeded, realistic B2B SaaS book of business with a known truth.

``generate(n_accounts, weeks, seed, end)`` simulates the accounts week by week (vectorised over
accounts: NumPy arrays of shape (accounts,) and (accounts, weeks); the only Python loop is over
weeks), writes the raw source tables, and :func:`build` loads them into a DuckDB store and
derives every metric of the default scorecard with the SQL definitions in
``data/metrics.yaml``. Nothing in the contract tables is written directly except the accounts,
products, renewals and activities, as a CRM would export them.

Ground truth (the model the data is drawn from; analytics should recover it)
===========================================================================

Time runs in weeks ``t``. The as-of dates are the last ``weeks`` Sundays up to ``end``; a warm-up
of 26 weeks before the first as-of date feeds the 90-day windows and the renewal decisions.

Portfolio
  Segments Enterprise / Mid-Market / SMB (15 / 35 / 50 %), regions NA / EMEA / APAC / LATAM
  (40 / 30 / 20 / 10 %), eight industries, about 25 CSMs (``max(25, accounts / 80)``), each
  serving one segment. ARR is log-normal by segment (medians 180k / 45k / 9k, sigma 0.5) and split
  over one to three products (Core always; Analytics 45 %, Automation 30 %, more in
  Enterprise). Renewal dates are the anniversaries of ``customer_since`` (spread over the year);
  about 15 % of accounts a year are new logos that start during the simulated period.

Latent health
  ``h[i, t] = b[i] + u[i, t]`` with ``b ~ N(0, 0.8)`` and an AR(1) drift
  ``u[t] = 0.95 u[t-1] + e``, stationary sd 0.5. Each DEAR component is
  ``z_k[i, t] = 0.8 h[i, t] + c_k[i] + effects``, ``c_k ~ N(0, 0.5)``, k in D, E, A, R.

CSM activities (causal; their rates depend on the CSM's style and the segment, **not** on health,
so a regression of components on activities recovers the effects)
  Weekly counts of EBRs, success-plan reviews and trainings are Poisson; each builds a stock
  ``S[t] = 0.93 S[t-1] + count[t]`` (half-life about 10 weeks). Effects per unit of stock:

  ===================== =========== ========== ======== ======
  activity              Deployment  Engagement Adoption ROI
  ===================== =========== ========== ======== ======
  EBR                   0           +0.25      +0.15    0
  training              +0.15       0          +0.25    0
  success-plan review   0           0          0        +0.25
  ===================== =========== ========== ======== ======

  Quarterly EBRs (stock about 1.1) thus lift Engagement by about 0.27 and Adoption by 0.16.
  New customers also get 0.3 trainings a week in their first 13 weeks (onboarding): when
  estimating the effects, leave out accounts younger than about six months, whose Adoption is
  also held back by the onboarding ramp below.

Other effects on the components
  Onboarding: Deployment ``-1.2 * max(0, 1 - tenure_weeks / 20)``, Adoption
  ``-0.6 * max(0, 1 - tenure_weeks / 26)``. A sponsor leaving (hazard 4 % a year per account)
  lowers Engagement by 0.8, recovering linearly over 26 weeks.

Renewals
  At each anniversary ``A`` on or after the first as-of date the account renews or churns. The
  decision is drawn 17 weeks before ``A`` from the components at that week:

  ``logit P(renew) = 1.9 + 0.9 z_A + 0.6 z_R + 0.4 z_D + 0.3 z_E - 0.8 sponsor_left_26w``

  (Adoption strongest, then ROI, Deployment, Engagement; ``sponsor_left_26w`` = a sponsor left in
  the 26 weeks before). A churning account disengages over those 17 weeks: Adoption falls by up to
  1.5, the other components by up to 0.8 (so usage falls before churn); its data stops at ``A``
  (``churned_on = A``, ``arr_after = 0``). A renewing account changes ARR by
  ``g = 0.04 + 0.10 (z_A + z_R) / 2 + N(0, 0.08)``, floored at -50 %: ``|g| < 0.03`` is flat,
  otherwise expansion or downsell.

Observed raw data (what the SQL metrics read)
  The measurement model: each metric of the default scorecards is driven mainly by the
  component of the DEAR group it is scored in, with realistic noise, lags and rarity, and
  shares no noise with another group's metrics. (A metric that mixed in another group's
  component, or shared noise with another group's metrics, would move signal between groups
  in any regression on the observed scores; a saturated one would carry little signal.)

  * ``usage_weekly`` per product and as-of week: activated users = licences *
    sigmoid(1.0 + 0.9 z~_D + e) * ramp, where ``z~_D`` is z_D smoothed by 0.95 a week
    (activated logins are a stock that follows Deployment with a half-life of about 13 weeks)
    and ramp = weeks since the product started / 12, at most 1; weekly active users =
    licences * ramp * sigmoid(-0.5 + 1.0 z_A + e), at most the activated users; sticky = active
    * sigmoid(-0.4 + 0.9 z_A + e); rounded, with small weekly noise e (sd 0.03-0.05); core
    features used in 30 days ~ Binomial(12, sigmoid(-0.2 + 0.8 z_A)). Each product has its own
    offsets N(0, 0.3), one for Deployment and another for Adoption.
  * ``integrations``, ``onboarding_milestones``: per product, from ``b + c_D`` plus the
    product's Deployment offset (set when the product starts): live integrations ~
    Poisson(exp(0.3 + 0.8 (b + c_D))), going live faster, and milestones completed faster and
    more often, with a higher value.
  * ``touchpoints``: the activities above (EBR with an executive, success-plan review with the
    champion, training with end users) plus calls and meetings at a rate ``* exp(0.35 z_E)``
    whose persona is executive with probability sigmoid(-2.2 + 0.6 z_E).
  * ``tickets``: 1.2 / 0.45 / 0.15 a week (Enterprise / Mid-Market / SMB) ``* exp(-0.3 z_D -
    0.5 z_R)`` (poorly deployed accounts and those not getting value open more); P1 with
    sigmoid(-3 - 1.2 z_R), escalated with sigmoid(-3 - 1.2 z_R) (about 10 % each).
  * ``surveys``: NPS waves every 26 weeks (0-10 answers around ``8.0 + 1.3 z_E``, sd 1.8) and
    CSAT after 35 % of closed tickets (1-5 around ``4 + 0.35 z_E``), both read in Engagement.
  * ``success_plan_outcomes``: a plan every 26 weeks from ``customer_since`` with 3-6 outcomes
    due 30-180 days later; each comes up for review ``14 + Exp(60 exp(-0.3 z_R))`` days after
    the plan starts (z_R at the start) and is verified then with probability sigmoid(2.0 z_R)
    (z_R in the week of the review), so the share verified follows ROI with a lag.
  * ``csm_ratings``: executive relationship Strong / Neutral / Weak from ``z_E + N(0, 0.5)``
    (> 0.6, < -0.6). ``sponsor_changes``: the leaving events, and a new sponsor 6-10 weeks
    later.
  * ``demo_truth`` keeps ``h`` and the four components (as used to draw the data, churners'
    disengagement included) per account and as-of date, and the total activity stock, so tests
    and analytics can be checked against the truth.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

DEFAULT_SCORECARDS = Path(__file__).resolve().parent.parent / "data" / "scorecards"
WARMUP_WEEKS = 26
DECISION_WEEKS = 17
SEGMENTS = ("Enterprise", "Mid-Market", "SMB")
SEGMENT_P = (0.15, 0.35, 0.50)
REGIONS = ("NA", "EMEA", "APAC", "LATAM")
REGION_P = (0.40, 0.30, 0.20, 0.10)
INDUSTRIES = (
    "Software",
    "Financial services",
    "Healthcare",
    "Manufacturing",
    "Retail",
    "Education",
    "Media",
    "Logistics",
)
PRODUCTS = ("Core", "Analytics", "Automation")
INTEGRATIONS = ("Salesforce", "Slack", "Jira", "HubSpot", "Zendesk", "Snowflake", "Okta", "SAP")
TOUCHPOINT_TYPES = ("ebr", "success_plan_review", "training", "call", "meeting", "email")
PERSONAS = ("executive", "champion", "admin", "end_user")
MILESTONES = ("kickoff", "sso", "data_import", "admin_trained", "first_workflow", "go_live")
CORE_FEATURES = 12

# The truth, as constants (the docstring above explains them).
RENEWAL_INTERCEPT = 1.9
RENEWAL_COEF = {"adoption": 0.9, "roi": 0.6, "deployment": 0.4, "engagement": 0.3}
SPONSOR_LEFT_COEF = -0.8
ACTIVITY_EFFECTS = {  # per unit of activity stock, on the latent components
    "ebr": {"engagement": 0.25, "adoption": 0.15},
    "training": {"deployment": 0.15, "adoption": 0.25},
    "success_plan_review": {"roi": 0.25},
}
STOCK_DECAY = 0.93
ACTIVATION_LAG = 0.95  # weekly smoothing of Deployment into activated users (half-life ~13 w)
PLAN_DAYS = 182  # a success plan every six months

_SEG_ARR_MEDIAN = np.array([180_000.0, 45_000.0, 9_000.0])
_SEG_LICENCES = np.array([400.0, 80.0, 20.0])
_SEG_CONTACTS = np.array([25, 10, 4])
# Activities per quarter by segment (EBR, success-plan review, training) before CSM style.
_SEG_ACTIVITY_Q = np.array([[1.0, 1.5, 1.0], [0.5, 0.8, 0.6], [0.15, 0.3, 0.3]])
_SEG_TOUCH_W = np.array([1.5, 0.6, 0.25])  # other touchpoints per week
_SEG_TICKETS_W = np.array([1.2, 0.45, 0.15])
_SEG_RATING_W = np.array([1 / 10, 1 / 13, 1 / 26])  # CSM rating probability per week
_SEG_NPS_N = np.array([6.0, 3.0, 1.0])

_NAME_A = (
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Vandelay",
    "Stark",
    "Wayne",
    "Wonka",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Aperture",
    "Massive",
    "Oscorp",
    "Gringotts",
    "Nakatomi",
    "Virtucon",
    "Monarch",
    "Sirius",
    "Pied Piper",
    "Dunder",
    "Bluth",
    "Prestige",
    "Gekko",
    "Cobalt",
    "Northwind",
    "Contoso",
    "Fabrikam",
    "Tailspin",
    "Litware",
    "Proseware",
)
_NAME_B = (
    "Labs",
    "Systems",
    "Industries",
    "Holdings",
    "Analytics",
    "Logistics",
    "Health",
    "Energy",
    "Foods",
    "Media",
    "Robotics",
    "Capital",
    "Networks",
    "Retail",
    "Works",
    "Partners",
)
_NAME_C = ("Inc", "Ltd", "GmbH", "SA", "BV", "LLC", "plc", "KK")
_RATING_COMMENTS = {
    "Strong": ("Sponsor engaged in QBR", "Exec champion pushing rollout", "Great exec access"),
    "Neutral": ("Sponsor busy, delegating", "Cordial but distant", "New priorities upstairs"),
    "Weak": ("No exec access this quarter", "Sponsor disengaged", "Budget holder unresponsive"),
}


@dataclass
class DemoData:
    """The generated tables (Polars frames, by store table name; empty when they went to a
    sink), rows per table, the as-of dates and a summary of the truth."""

    tables: dict[str, pl.DataFrame]
    as_of_dates: list[date]
    seed: int
    truth: dict[str, object] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)


Sink = Callable[[str, pl.DataFrame], object]


class _Tables(dict[str, pl.DataFrame]):
    """Keeps each generated table, or hands it to a sink at once (so a million accounts never
    hold every table in memory together)."""

    def __init__(self, sink: Sink | None) -> None:
        super().__init__()
        self.sink = sink
        self.rows: dict[str, int] = {}

    def __setitem__(self, name: str, frame: pl.DataFrame) -> None:
        self.rows[name] = frame.height
        if self.sink is None:
            super().__setitem__(name, frame)
        else:
            self.sink(name, frame)


def default_end(today: date | None = None) -> date:
    """The last Sunday on or before ``today``: the demo's last as-of date."""
    today = today or date.today()
    return today - timedelta(days=(today.weekday() + 1) % 7)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _date_col(days: np.ndarray, valid: np.ndarray | None = None) -> pl.Series:
    """Days since 1970-01-01 -> a Polars Date series; null where ``valid`` is False."""
    s = pl.Series(days.astype(np.int32)).cast(pl.Date)
    if valid is not None:
        s = pl.select(pl.when(pl.Series(valid)).then(s).otherwise(None)).to_series()
    return s


def _pick(labels: tuple[str, ...] | list[str], idx: np.ndarray) -> pl.Series:
    """``labels[idx]`` as a Polars string column (much faster than NumPy string arrays)."""
    return pl.Series(list(labels), dtype=pl.String).gather(np.asarray(idx, dtype=np.int64))


def _const(label: str, n: int) -> pl.Series:
    return pl.repeat(label, n, eager=True, dtype=pl.String)


def _group_cumsum(values: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Cumulative sums restarting at each group of consecutive ``sizes`` elements."""
    if values.size == 0:
        return values.astype(float)
    cs = np.cumsum(values)
    ends = np.cumsum(sizes)
    before = np.concatenate([[0.0], cs[ends[:-1] - 1]]) if sizes.size else np.zeros(0)
    before = np.where(np.concatenate([[0], ends[:-1]]) > 0, before, 0.0)
    return cs - np.repeat(before, sizes)


def _ids(prefix: str, idx: np.ndarray, width: int) -> pl.Series:
    return pl.select(
        pl.format(prefix + "{}", pl.Series(idx.astype(np.int64)).cast(pl.String).str.zfill(width))
    ).to_series()


def generate(
    n_accounts: int = 2000,
    weeks: int = 104,
    seed: int = 7,
    end: date | None = None,
    progress: Callable[[str], None] | None = None,
    sink: Sink | None = None,
) -> DemoData:
    """Simulate the portfolio and return every table as Polars frames (nothing is written),
    or hand each table to ``sink(name, frame)`` as soon as it is made.

    ``end`` is the last as-of date (default: the last Sunday); the as-of dates are ``weeks``
    weekly dates ending there. Deterministic for a given (n_accounts, weeks, seed, end).
    """
    if n_accounts < 1 or weeks < 1:
        raise ValueError("the demo needs at least one account and one week")
    say = progress or (lambda _msg: None)
    rng = np.random.default_rng(seed)
    end = end or default_end()
    n = n_accounts
    H = WARMUP_WEEKS
    T = H + weeks
    epoch = date(1970, 1, 1)
    end_day = (end - epoch).days
    s0 = end_day - 7 * T + 1  # first day of week 0; week t ends on s0 + 7t + 6
    week_end = s0 + 7 * np.arange(T) + 6
    grid_start_day = int(week_end[H])

    # ---------------------------------------------------------------- accounts
    say("accounts")
    seg = rng.choice(3, size=n, p=SEGMENT_P).astype(np.int8)
    region = rng.choice(len(REGIONS), size=n, p=REGION_P)
    industry = rng.integers(0, len(INDUSTRIES), size=n)
    n_csm_per_seg = np.maximum(
        np.array([5, 8, 12]), np.round(np.array([5, 8, 12]) * n / 2000)
    ).astype(int)
    csm_offset = np.concatenate([[0], np.cumsum(n_csm_per_seg)[:-1]])
    csm_idx = csm_offset[seg] + (rng.random(n) * n_csm_per_seg[seg]).astype(int)
    n_csm = int(n_csm_per_seg.sum())
    csm_style = rng.lognormal(0.0, 0.5, size=n_csm)
    style = csm_style[csm_idx]

    p_new = min(0.4, 0.15 * T / 52)
    is_new = rng.random(n) < p_new
    since_old = grid_start_day - 7 * H - rng.integers(1, 5 * 365, size=n)
    since_new = rng.integers(s0, end_day - 13, size=n)
    since = np.where(is_new, since_new, since_old)
    t_since = np.clip((since - s0) // 7, 0, None)  # first week whose end is >= since

    arr = np.round(_SEG_ARR_MEDIAN[seg] * rng.lognormal(0.0, 0.5, size=n), -2)
    licences = np.maximum(5, np.round(_SEG_LICENCES[seg] * rng.lognormal(0.0, 0.6, size=n))).astype(
        int
    )
    n_contacts = _SEG_CONTACTS[seg] + rng.poisson(2, size=n)

    has = np.zeros((n, 3), dtype=bool)
    has[:, 0] = True
    has[:, 1] = rng.random(n) < np.array([0.65, 0.45, 0.35])[seg]
    has[:, 2] = rng.random(n) < np.array([0.50, 0.30, 0.20])[seg]
    prod_start = np.stack(
        [since, since + rng.integers(0, 400, size=n), since + rng.integers(0, 500, size=n)], axis=1
    )
    has &= prod_start <= end_day - 7
    prod_share = np.where(
        has, np.array([1.0, 0.45, 0.35]) * rng.uniform(0.7, 1.3, size=(n, 3)), 0.0
    )
    prod_licences = np.where(
        has, np.maximum(2, np.round(licences[:, None] * np.array([1.0, 0.5, 0.4]))), 0
    ).astype(int)
    prod_offset = rng.normal(0.0, 0.3, size=(n, 3))

    # ---------------------------------------------------------------- latent simulation
    say("latent health")
    b = rng.normal(0.0, 0.8, size=n)
    c = rng.normal(0.0, 0.5, size=(4, n))  # D, E, A, R
    phi = 0.95
    u = rng.normal(0.0, 0.5, size=n)
    u_sd = 0.5 * math.sqrt(1 - phi**2)

    act_rate_w = _SEG_ACTIVITY_Q[seg] / 13.0 * style[:, None]  # (n, 3) per week
    stocks = act_rate_w / (1 - STOCK_DECAY)  # start at the steady state
    counts = np.zeros((3, n, T), dtype=np.int16)  # ebr, spr, training
    comp = np.zeros((4, n, T), dtype=np.float32)
    health = np.zeros((n, T), dtype=np.float32)
    stock_total = np.zeros((n, T), dtype=np.float32)
    deployed = np.zeros((n, T), dtype=np.float32)  # z_D smoothed: what activation follows
    z_d_slow = np.zeros(n)
    active = np.zeros((n, T), dtype=bool)

    k_years = np.maximum(1, np.ceil((grid_start_day - since) / 365.0)).astype(int)
    next_a = since + 365 * k_years  # next anniversary on or after the first as-of date
    churn_day = np.full(n, np.iinfo(np.int32).max, dtype=np.int64)
    decided = np.zeros(n, dtype=np.int8)  # 0 pending, 1 renew, 2 churn
    arr_after = arr.copy()
    sponsor_left_week = np.full(n, -10_000)
    sponsor_events: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    renewal_rows: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    decision_rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    cur_arr = arr.copy()

    for t in range(T):
        d_t = week_end[t]
        act = (t >= t_since) & (d_t < churn_day)
        active[:, t] = act
        u = phi * u + u_sd * rng.standard_normal(n)
        h = b + u
        onboarding_training = np.where(t - t_since < 13, 0.3, 0.0)
        rates = act_rate_w.copy()
        rates[:, 2] += onboarding_training
        cnt = rng.poisson(rates * act[:, None]).astype(np.int16)
        counts[:, :, t] = cnt.T
        stocks = STOCK_DECAY * stocks + cnt
        left = act & (rng.random(n) < 0.04 / 52)
        if left.any():
            who = np.nonzero(left)[0]
            sponsor_events.append(
                (who, d_t - rng.integers(0, 7, size=who.size), np.full(who.size, t))
            )
            sponsor_left_week[who] = t
        since_left = t - sponsor_left_week
        sponsor_dip = np.where(since_left < 26, 0.8 * (1 - since_left / 26), 0.0)
        tenure = t - t_since
        z_d = (
            0.8 * h
            + c[0]
            + ACTIVITY_EFFECTS["training"]["deployment"] * stocks[:, 2]
            - 1.2 * np.clip(1 - tenure / 20, 0, 1)
        )
        z_e = 0.8 * h + c[1] + ACTIVITY_EFFECTS["ebr"]["engagement"] * stocks[:, 0] - sponsor_dip
        z_a = (
            0.8 * h
            + c[2]
            + ACTIVITY_EFFECTS["ebr"]["adoption"] * stocks[:, 0]
            + ACTIVITY_EFFECTS["training"]["adoption"] * stocks[:, 2]
            - 0.6 * np.clip(1 - tenure / 26, 0, 1)
        )
        z_r = 0.8 * h + c[3] + ACTIVITY_EFFECTS["success_plan_review"]["roi"] * stocks[:, 1]

        # renewal decisions, 17 weeks before the anniversary
        a_week = (next_a - s0) // 7
        deciding = act & (decided == 0) & (a_week - DECISION_WEEKS <= t)
        if deciding.any():
            who = np.nonzero(deciding)[0]
            logit = (
                RENEWAL_INTERCEPT
                + RENEWAL_COEF["adoption"] * z_a[who]
                + RENEWAL_COEF["roi"] * z_r[who]
                + RENEWAL_COEF["deployment"] * z_d[who]
                + RENEWAL_COEF["engagement"] * z_e[who]
                + SPONSOR_LEFT_COEF * (since_left[who] < 26)
            )
            renew = rng.random(who.size) < _sigmoid(logit)
            decided[who] = np.where(renew, 1, 2)
            g = 0.04 + 0.10 * (z_a[who] + z_r[who]) / 2 + rng.normal(0, 0.08, size=who.size)
            g = np.maximum(g, -0.5)
            g = np.where(np.abs(g) < 0.03, 0.0, g)
            arr_after[who] = np.where(renew, np.round(cur_arr[who] * (1 + g), -2), 0.0)
            decision_rows.append((who, np.full(who.size, t), _sigmoid(logit)))
        # churners disengage before the anniversary
        churning = decided == 2
        ramp = np.where(
            churning, np.clip((t - (a_week - DECISION_WEEKS)) / DECISION_WEEKS, 0, 1), 0.0
        )
        z_a = z_a - 1.5 * ramp
        z_d = z_d - 0.8 * ramp
        z_e = z_e - 0.8 * ramp
        z_r = z_r - 0.8 * ramp
        comp[0, :, t] = z_d
        comp[1, :, t] = z_e
        comp[2, :, t] = z_a
        comp[3, :, t] = z_r
        z_d_slow = z_d if t == 0 else ACTIVATION_LAG * z_d_slow + (1 - ACTIVATION_LAG) * z_d
        deployed[:, t] = z_d_slow
        health[:, t] = h
        stock_total[:, t] = stocks.sum(axis=1)

        # anniversaries in this week: book the renewal
        due = act & (decided > 0) & (a_week == t)
        if due.any():
            who = np.nonzero(due)[0]
            renewal_rows.append((who, next_a[who], cur_arr[who], arr_after[who]))
            churned = decided[who] == 2
            churn_day[who[churned]] = next_a[who[churned]]
            ren = who[~churned]
            cur_arr[ren] = arr_after[ren]
            next_a[ren] += 365
            decided[who] = np.where(churned, 2, 0)

    # ---------------------------------------------------------------- frames
    say("source tables")
    acc_ids = _ids("A", np.arange(1, n + 1), 6 if n < 1_000_000 else 7)
    acc_arr = pl.Series("account_id", acc_ids)
    csm_names = [f"CSM {i + 1:03d}" for i in range(n_csm)]
    tables = _Tables(sink)

    churned_on = churn_day < np.iinfo(np.int32).max
    stage = np.where(
        churned_on,
        "churned",
        np.where(
            end_day - since < 90,
            "onboarding",
            np.where(
                (next_a - end_day) <= 90,
                "renewal",
                np.where((end_day - since > 365) & (b + c[2] > 0.3), "expansion", "adoption"),
            ),
        ),
    )
    renewal_next = np.where(churned_on, churn_day, next_a)
    name_idx = rng.integers(0, [len(_NAME_A), len(_NAME_B), len(_NAME_C)], size=(n, 3))
    names = pl.select(
        pl.concat_str(
            [
                pl.Series(np.array(_NAME_A)[name_idx[:, 0]]),
                pl.lit(" "),
                pl.Series(np.array(_NAME_B)[name_idx[:, 1]]),
                pl.lit(" "),
                pl.Series(np.array(_NAME_C)[name_idx[:, 2]]),
                pl.lit(" #"),
                pl.Series(np.arange(1, n + 1)).cast(pl.String),
            ]
        )
    ).to_series()
    tables["accounts"] = pl.DataFrame(
        {
            "account_id": acc_arr,
            "name": names,
            "arr": cur_arr.astype(float),  # churned accounts keep their last ARR
            "segment": np.array(SEGMENTS)[seg],
            "lifecycle_stage": stage,
            "region": np.array(REGIONS)[region],
            "industry": np.array(INDUSTRIES)[industry],
            "csm": _pick(csm_names, csm_idx),
            "renewal_date": _date_col(renewal_next),
            "parent_account_id": pl.Series([None] * n, dtype=pl.String),
            "customer_since": _date_col(since),
            "churned_on": _date_col(np.where(churned_on, churn_day, 0), churned_on),
        }
    )

    # products: ARR split by share over owned products
    ai, pi = np.nonzero(has)
    share = prod_share[ai, pi] / prod_share.sum(axis=1)[ai]
    tables["products"] = pl.DataFrame(
        {
            "account_id": acc_ids.gather(ai),
            "product": np.array(PRODUCTS)[pi],
            "arr": np.round(cur_arr[ai] * share, 2),
        }
    )
    tables["entitlements"] = pl.DataFrame(
        {
            "account_id": acc_ids.gather(ai),
            "product": np.array(PRODUCTS)[pi],
            "start_date": _date_col(prod_start[ai, pi]),
            "licences": prod_licences[ai, pi].astype(np.int32),
            "core_features": np.full(ai.size, CORE_FEATURES, dtype=np.int32),
        }
    )

    # usage per product and as-of week
    say("usage")
    gw = np.arange(H, T)
    # Deployment and Adoption get their own product offsets: a shared one would be noise common
    # to both groups' scores, which a regression then cancels by giving Deployment a negative
    # weight next to Adoption.
    deploy_offset = rng.normal(0.0, 0.3, size=(n, 3))
    pz_d = deployed[ai][:, gw] + deploy_offset[ai, pi][:, None]
    pz_a = comp[2][ai][:, gw] + prod_offset[ai, pi][:, None]
    p_weeks_live = (week_end[gw][None, :] - prod_start[ai, pi][:, None]) // 7
    live = active[ai][:, gw] & (p_weeks_live >= 0)
    ramp = np.clip((p_weeks_live + 1) / 12.0, 0.05, 1.0)
    lic = np.broadcast_to(prod_licences[ai, pi][:, None], live.shape)
    # The same people tend to work every week: shares move with the latent state plus a little
    # weekly noise, not as independent coin flips per user (which would make small accounts jumpy).
    # Activated users are a stock (logins provisioned, rarely removed): they follow Deployment
    # with a lag. Weekly active users are a share of the licences set by Adoption, capped by
    # the activated users (not a share of the activated ones, which would make the Adoption
    # score a second measure of Deployment).
    activated = np.round(
        lic * _sigmoid(1.0 + 0.9 * pz_d + rng.normal(0, 0.03, size=live.shape)) * ramp
    )
    active_users = np.minimum(
        activated,
        np.round(lic * ramp * _sigmoid(-0.5 + 1.0 * pz_a + rng.normal(0, 0.05, size=live.shape))),
    )
    sticky = np.round(
        active_users * _sigmoid(-0.4 + 0.9 * pz_a + rng.normal(0, 0.05, size=live.shape))
    )
    feats = rng.binomial(CORE_FEATURES, _sigmoid(-0.2 + 0.8 * pz_a))
    r, w = np.nonzero(live)
    tables["usage_weekly"] = pl.DataFrame(
        {
            "account_id": acc_ids.gather(ai[r]),
            "product": _pick(PRODUCTS, pi[r]),
            "week_ending": _date_col(week_end[gw][w]),
            "activated_users": activated[r, w].astype(np.int32),
            "active_users": active_users[r, w].astype(np.int32),
            "sticky_users": sticky[r, w].astype(np.int32),
            "features_used_30d": feats[r, w].astype(np.int32),
        }
    )
    del pz_d, pz_a, activated, active_users, sticky, feats, live, lic, ramp, deployed

    # integrations and onboarding milestones: per account-product, from base health
    say("deployment records")
    base_d = b[ai] + c[0][ai] + deploy_offset[ai, pi]
    n_int = np.minimum(rng.poisson(np.exp(0.3 + 0.8 * base_d)), len(INTEGRATIONS))
    ii = np.repeat(np.arange(ai.size), n_int)
    k = np.arange(ii.size) - np.repeat(np.cumsum(n_int) - n_int, n_int)
    gaps = rng.exponential(60 * np.exp(-0.3 * base_d[ii])) + 7
    live_on = prod_start[ai, pi][ii] + np.round(_group_cumsum(gaps, n_int)).astype(int)
    retired = rng.random(ii.size) < 0.1
    retired_on = live_on + rng.integers(60, 720, size=ii.size)
    keep = live_on <= end_day
    tables["integrations"] = pl.DataFrame(
        {
            "account_id": acc_ids.gather(ai[ii][keep]),
            "product": _pick(PRODUCTS, pi[ii][keep]),
            "integration": _pick(INTEGRATIONS, k[keep]),
            "live_on": _date_col(live_on[keep]),
            "retired_on": _date_col(retired_on[keep], (retired & (retired_on <= end_day))[keep]),
        }
    )
    m = len(MILESTONES)
    mi = np.repeat(np.arange(ai.size), m)
    mj = np.tile(np.arange(m), ai.size)
    delays = rng.gamma(2.0, 10.0 * np.exp(-0.35 * base_d[mi]))
    done_by = prod_start[ai, pi][mi] + np.round(
        np.cumsum(delays.reshape(ai.size, m), axis=1).reshape(-1)
    ).astype(int)
    completes = rng.random(mi.size) < _sigmoid(2.5 + 1.0 * base_d[mi] - 0.3 * mj)
    done = completes & (done_by <= end_day)
    tables["onboarding_milestones"] = pl.DataFrame(
        {
            "account_id": acc_ids.gather(ai[mi]),
            "product": _pick(PRODUCTS, pi[mi]),
            "milestone": _pick(MILESTONES, mj),
            "completed_on": _date_col(done_by, done),
        }
    )

    # touchpoints: activities (EBR, success-plan review, training) and other contacts
    say("touchpoints")
    frames = []
    persona_of = (0, 1, 3)  # EBR with an executive, review with the champion, training users
    for a in range(3):
        ri, ti = np.nonzero(counts[a])
        reps = counts[a][ri, ti]
        ri = np.repeat(ri, reps)
        ti = np.repeat(ti, reps)
        if a == 0:
            contact = rng.integers(0, 2, size=ri.size)  # the executive sponsors
        else:
            contact = 2 + (rng.random(ri.size) * (n_contacts[ri] - 2)).astype(int)
        frames.append(
            (
                ri,
                ti,
                np.full(ri.size, a, dtype=np.int8),
                np.full(ri.size, persona_of[a], dtype=np.int8),
                contact,
            )
        )
    rate = _SEG_TOUCH_W[seg][:, None] * np.exp(0.35 * comp[1]) * active
    other = rng.poisson(rate)
    ri, ti = np.nonzero(other)
    reps = other[ri, ti]
    ri = np.repeat(ri, reps)
    ti = np.repeat(ti, reps)
    is_exec = rng.random(ri.size) < _sigmoid(-2.2 + 0.6 * comp[1][ri, ti])
    persona = np.where(is_exec, 0, rng.integers(1, 4, size=ri.size)).astype(np.int8)
    contact = np.where(
        is_exec,
        rng.integers(0, 2, size=ri.size),
        2 + (rng.random(ri.size) * (n_contacts[ri] - 2)).astype(int),
    )
    kind = rng.integers(3, 6, size=ri.size).astype(np.int8)  # call, meeting, email
    frames.append((ri, ti, kind, persona, contact))
    tp_r = np.concatenate([f[0] for f in frames])
    tp_t = np.concatenate([f[1] for f in frames])
    tp_day = week_end[tp_t] - rng.integers(0, 7, size=tp_r.size)
    tp_type = np.concatenate([f[2] for f in frames])
    tp_persona = np.concatenate([f[3] for f in frames])
    tp_contact = np.concatenate([f[4] for f in frames])
    order = np.lexsort((tp_r, tp_day))
    tp_acc = acc_ids.gather(tp_r[order])
    touch = pl.DataFrame(
        {
            "account_id": tp_acc,
            "date": _date_col(tp_day[order]),
            "type": _pick(TOUCHPOINT_TYPES, tp_type[order]),
            "persona": _pick(PERSONAS, tp_persona[order]),
            "contact_id": pl.select(
                pl.format(
                    "{}-C{}", tp_acc, pl.Series(tp_contact[order]).cast(pl.String).str.zfill(2)
                )
            ).to_series(),
            "csm": _pick(csm_names, csm_idx[tp_r[order]]),
        }
    )
    tables["activities"] = (
        touch.filter(pl.col("type").is_in(["ebr", "success_plan_review", "training"]))
        .select("account_id", "date", "type", "csm")
        .unique(maintain_order=True)
    )
    tables["touchpoints"] = touch
    del touch, tp_acc, tp_r, tp_t, tp_day, tp_type, tp_persona, tp_contact, frames, other, rate

    # tickets and CSAT
    say("tickets and surveys")
    trate = _SEG_TICKETS_W[seg][:, None] * np.exp(-0.3 * comp[0] - 0.5 * comp[3]) * active
    tk = rng.poisson(trate)
    ri, ti = np.nonzero(tk)
    reps = tk[ri, ti]
    ri = np.repeat(ri, reps)
    ti = np.repeat(ti, reps)
    z_r_t = comp[3][ri, ti]
    opened = week_end[ti] - rng.integers(0, 7, size=ri.size)
    p1 = rng.random(ri.size) < _sigmoid(-3.0 - 1.2 * z_r_t)
    escal = rng.random(ri.size) < _sigmoid(-3.0 - 1.2 * z_r_t)
    mean_days = np.where(escal, 21.0, np.where(p1, 3.0, 7.0))
    closed = opened + np.ceil(rng.exponential(mean_days)).astype(int)
    is_closed = closed <= end_day
    order = np.lexsort((ri, opened))
    tables["tickets"] = pl.DataFrame(
        {
            "ticket_id": _ids("T", np.arange(1, ri.size + 1), 8),
            "account_id": acc_ids.gather(ri[order]),
            "product": _const(PRODUCTS[0], ri.size),
            "opened_on": _date_col(opened[order]),
            "closed_on": _date_col(closed[order], is_closed[order]),
            "priority": _pick(
                ("P1", "P2", "P3", "P4"), np.where(p1, 0, rng.integers(1, 4, size=ri.size))[order]
            ),
            "escalated": escal[order],
        }
    )
    responds = is_closed & (rng.random(ri.size) < 0.35)
    csat = np.clip(np.round(rng.normal(4.0 + 0.35 * comp[1][ri, ti], 0.8)), 1, 5).astype(np.int32)
    csat_frame = pl.DataFrame(
        {
            "account_id": acc_ids.gather(ri[responds]),
            "contact_id": pl.select(
                pl.format(
                    "{}-C{}",
                    acc_ids.gather(ri[responds]),
                    pl.Series(
                        2
                        + (rng.random(int(responds.sum())) * (n_contacts[ri[responds]] - 2)).astype(
                            int
                        )
                    )
                    .cast(pl.String)
                    .str.zfill(2),
                )
            ).to_series(),
            "responded_on": _date_col(closed[responds]),
            "kind": _const("csat", int(responds.sum())),
            "score": csat[responds],
        }
    )
    # NPS waves every 26 weeks, at an account-specific phase
    phase = rng.integers(0, 26, size=n)
    wave = ((np.arange(T)[None, :] - phase[:, None]) % 26 == 0) & active
    ri, ti = np.nonzero(wave)
    nresp = 1 + rng.poisson(_SEG_NPS_N[seg][ri])
    rr = np.repeat(ri, nresp)
    tt = np.repeat(ti, nresp)
    nps_score = np.clip(np.round(rng.normal(8.0 + 1.3 * comp[1][rr, tt], 1.8)), 0, 10).astype(
        np.int32
    )
    nps_frame = pl.DataFrame(
        {
            "account_id": acc_ids.gather(rr),
            "contact_id": pl.select(
                pl.format(
                    "{}-C{}",
                    acc_ids.gather(rr),
                    pl.Series((rng.random(rr.size) * n_contacts[rr]).astype(int))
                    .cast(pl.String)
                    .str.zfill(2),
                )
            ).to_series(),
            "responded_on": _date_col(week_end[tt] - 3),
            "kind": _const("nps", rr.size),
            "score": nps_score,
        }
    )
    tables["surveys"] = pl.concat([nps_frame, csat_frame]).sort("responded_on", "account_id")
    del nps_frame, csat_frame

    # success plans: one every six months per account from its start, 3-6 outcomes
    say("success plans and ratings")
    plan_starts = []
    for kk in range(0, int((end_day - since.min()) // PLAN_DAYS) + 1):
        day = since + PLAN_DAYS * kk
        ok = (day <= end_day) & (day >= s0 - 365)
        plan_starts.append((np.nonzero(ok)[0], day[ok], kk))
    pa = np.concatenate([p[0] for p in plan_starts])
    pday = np.concatenate([p[1] for p in plan_starts])
    pk = np.concatenate([np.full(p[0].size, p[2]) for p in plan_starts])
    pw = np.clip((pday - s0) // 7, 0, T - 1)
    n_out = rng.integers(3, 7, size=pa.size)
    oa = np.repeat(pa, n_out)
    oday = np.repeat(pday, n_out)
    ow = np.repeat(pw, n_out)
    opk = np.repeat(pk, n_out)
    oj = np.arange(oa.size) - np.repeat(np.cumsum(n_out) - n_out, n_out)
    z_r_plan = comp[3][oa, ow]
    due = oday + rng.integers(30, 180, size=oa.size)
    # the customer confirms an outcome (or not) when it comes up for review, from the value it
    # gets then: the share verified follows ROI with the lag of the reviews
    ver_day = oday + np.ceil(rng.exponential(60 * np.exp(-0.3 * z_r_plan))).astype(int) + 14
    z_r_review = comp[3][oa, np.clip((ver_day - s0) // 7, 0, T - 1)]
    verified = rng.random(oa.size) < _sigmoid(2.0 * z_r_review)
    ver_ok = verified & (ver_day <= np.minimum(end_day, churn_day[oa]))
    alive = oday < churn_day[oa]
    tables["success_plan_outcomes"] = pl.DataFrame(
        {
            "account_id": acc_ids.gather(oa[alive]),
            "plan_id": pl.select(
                pl.format(
                    "{}-P{}", acc_ids.gather(oa[alive]), pl.Series(opk[alive]).cast(pl.String)
                )
            ).to_series(),
            "outcome": pl.select(
                pl.format("outcome {}", pl.Series(oj[alive] + 1).cast(pl.String))
            ).to_series(),
            "created_on": _date_col(oday[alive]),
            "due_on": _date_col(due[alive]),
            "verified_on": _date_col(ver_day[alive], ver_ok[alive]),
        }
    )

    rated = (rng.random((n, T)) < _SEG_RATING_W[seg][:, None]) & active
    ri, ti = np.nonzero(rated)
    score_e = comp[1][ri, ti] + rng.normal(0, 0.5, size=ri.size)
    lv_idx = np.where(score_e > 0.6, 0, np.where(score_e < -0.6, 2, 1))  # Strong, Neutral, Weak
    which = rng.integers(0, 3, size=ri.size)
    comments = [c for lv in ("Strong", "Neutral", "Weak") for c in _RATING_COMMENTS[lv]]
    tables["csm_ratings"] = pl.DataFrame(
        {
            "account_id": acc_ids.gather(ri),
            "rated_on": _date_col(week_end[ti] - rng.integers(0, 7, size=ri.size)),
            "dimension": _const("executive_relationship", ri.size),
            "rating": _pick(("Strong", "Neutral", "Weak"), lv_idx),
            "comment": _pick(comments, 3 * lv_idx + which),
            "csm": _pick(csm_names, csm_idx[ri]),
        }
    ).sort("rated_on", "account_id")

    if sponsor_events:
        sw = np.concatenate([e[0] for e in sponsor_events])
        sd = np.concatenate([e[1] for e in sponsor_events])
    else:
        sw = np.zeros(0, dtype=int)
        sd = np.zeros(0, dtype=int)
    joined_day = sd + 7 * rng.integers(6, 11, size=sw.size)
    j_ok = (joined_day <= end_day) & (joined_day < churn_day[sw])
    tables["sponsor_changes"] = pl.concat(
        [
            pl.DataFrame(
                {
                    "account_id": acc_ids.gather(sw),
                    "changed_on": _date_col(sd),
                    "change": _const("left", sw.size),
                    "contact_id": pl.select(pl.format("{}-C00", acc_ids.gather(sw))).to_series(),
                }
            ),
            pl.DataFrame(
                {
                    "account_id": acc_ids.gather(sw[j_ok]),
                    "changed_on": _date_col(joined_day[j_ok]),
                    "change": _const("joined", int(j_ok.sum())),
                    "contact_id": pl.select(
                        pl.format("{}-C90", acc_ids.gather(sw[j_ok]))
                    ).to_series(),
                }
            ),
        ]
    ).sort("changed_on", "account_id")

    # renewals (company level) booked on the grid
    if renewal_rows:
        rw = np.concatenate([x[0] for x in renewal_rows])
        rd = np.concatenate([x[1] for x in renewal_rows])
        rb = np.concatenate([x[2] for x in renewal_rows])
        ra = np.concatenate([x[3] for x in renewal_rows])
    else:
        rw = rd = np.zeros(0, dtype=int)
        rb = ra = np.zeros(0)
    tables["renewals"] = pl.DataFrame(
        {
            "account_id": acc_ids.gather(rw),
            "renewal_date": _date_col(rd),
            "arr_before": rb.astype(float),
            "arr_after": ra.astype(float),
            "product": pl.Series([None] * rw.size, dtype=pl.String),
        }
    ).sort("renewal_date", "account_id")

    # ground truth on the grid
    ri, ti = np.nonzero(active[:, H:])
    ti = ti + H
    tables["demo_truth"] = pl.DataFrame(
        {
            "account_id": acc_ids.gather(ri),
            "as_of": _date_col(week_end[ti]),
            "health": health[ri, ti].astype(float),
            "deployment": comp[0][ri, ti].astype(float),
            "engagement": comp[1][ri, ti].astype(float),
            "adoption": comp[2][ri, ti].astype(float),
            "roi": comp[3][ri, ti].astype(float),
            "activity_stock": stock_total[ri, ti].astype(float),
        }
    ).sort("as_of", "account_id")

    as_of_dates = [epoch + timedelta(days=int(d)) for d in week_end[H:]]
    if decision_rows:
        dw = np.concatenate([x[0] for x in decision_rows])
        dp = np.concatenate([x[2] for x in decision_rows])
    else:
        dw = np.zeros(0, dtype=int)
        dp = np.zeros(0)
    truth = {
        "renewal_intercept": RENEWAL_INTERCEPT,
        "renewal_coef": dict(RENEWAL_COEF),
        "sponsor_left_coef": SPONSOR_LEFT_COEF,
        "activity_effects": {k: dict(v) for k, v in ACTIVITY_EFFECTS.items()},
        "mean_renewal_probability": float(dp.mean()) if dp.size else None,
        "decisions": int(dw.size),
    }
    return DemoData(
        tables=dict(tables), as_of_dates=as_of_dates, seed=seed, truth=truth, rows=tables.rows
    )


def build(
    db: str | Path,
    *,
    n_accounts: int = 2000,
    weeks: int = 104,
    seed: int = 7,
    end: date | None = None,
    scorecards: str | Path | None = DEFAULT_SCORECARDS,
    metrics_path: str | Path | None = None,
    backfill: bool = True,
    progress: Callable[[str], None] | None = None,
) -> dict[str, object]:
    """Generate the demo into ``db`` (replacing any data in it), in one transaction: source
    tables, accounts, products, renewals, activities, then metric values derived by the SQL
    metric definitions; then store the scorecards of ``scorecards`` (a folder or file) as
    active versions and backfill the weekly score history (when ``backfill``).

    Returns a summary (rows per table, as-of range, seconds per stage).
    """
    import time

    from engine import metrics as metric_defs
    from engine import store

    say = progress or (lambda _msg: None)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    con = store.cursor(db)
    written = [0.0]

    def sink(name: str, frame: pl.DataFrame) -> None:
        tw = time.perf_counter()
        store.append(con, name, frame)
        written[0] += time.perf_counter() - tw

    with store.transaction(con):
        store.clear(
            con,
            [
                *store.CONTRACT_TABLES,
                *store.SOURCE_TABLES,
                "demo_truth",
                "score_history",
                "score_snapshots",
                "manual_overrides",
            ],
        )
        data = generate(
            n_accounts, weeks, seed, end, progress=lambda m: say(f"generating {m}"), sink=sink
        )
        timings["generate"] = time.perf_counter() - t0 - written[0]
        timings["write"] = written[0]
        rows = data.rows
        t2 = time.perf_counter()
        say(f"deriving metrics for {len(data.as_of_dates)} as-of dates")
        defs = (
            metric_defs.load_definitions(metrics_path)
            if metrics_path
            else metric_defs.load_definitions()
        )
        counts = metric_defs.derive_metrics(
            con, data.as_of_dates, definitions=defs, source="demo", in_transaction=True
        )
        timings["metrics"] = time.perf_counter() - t2
    summary: dict[str, object] = {
        "accounts": n_accounts,
        "weeks": weeks,
        "seed": seed,
        "first_as_of": data.as_of_dates[0],
        "last_as_of": data.as_of_dates[-1],
        "rows": rows | {"metric_values": sum(counts.values())},
        "truth": data.truth,
    }
    if scorecards is not None:
        from engine import history

        t3 = time.perf_counter()
        versions = history.ensure_scorecards(con, scorecards, author="demo")
        summary["scorecard_versions"] = versions
        if backfill:
            result = history.backfill(
                con,
                start=data.as_of_dates[0],
                end=data.as_of_dates[-1],
                progress=lambda i, total, d: (
                    say(f"scoring {d} ({i}/{total})") if (i == total or i % 13 == 0) else None
                ),
            )
            summary["history_rows"] = result.rows
        timings["history"] = time.perf_counter() - t3
    summary["seconds"] = {k: round(v, 2) for k, v in timings.items()}
    summary["seconds"]["total"] = round(time.perf_counter() - t0, 2)  # type: ignore[index]
    return summary
