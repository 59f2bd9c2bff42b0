"""A sweep's document and figures -> the typed context of the sweep page."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from reportgen.artifacts.sweepdoc import SWEEP_METRICS, Comparison, RunEntry, SweepDocument
from reportgen.config.sweepspec import SweepSpec, value_text
from reportgen.evaluate.seeds import MIN_SEEDS_FOR_VARIATION
from reportgen.evaluate.statistics import DEFAULT_ALPHA
from reportgen.report.page import Figure, Page, ReportDate, embed_png

# A sweep report figure: its name, PNG bytes, alt text and caption.
FigurePng = tuple[str, bytes, str, str]


@dataclass(frozen=True, kw_only=True)
class SweepPage(Page):
    """Everything the sweep page displays."""

    TEMPLATE: ClassVar[str] = "pages/sweep.html.j2"
    source: str  # the sweep file's name
    doc: SweepDocument
    models: list[str]
    level: float
    alpha: float
    run_count: int
    failed: list[RunEntry]
    model_comparisons: list[Comparison]
    point_comparisons: list[Comparison]
    seed_figures: list[Figure]
    curve_figures: list[Figure]
    effect_figures: list[Figure]
    values: dict[str, dict[str, str]]  # point → swept key → its value, as TOML writes it
    reference: str  # the first point, which the others are compared with
    run_reports: str  # the sweep's run_reports: what each run wrote besides its data
    linked_reports: bool  # some run has a report.html to link to
    min_seeds: int  # the seeds it takes to compare a difference with the seed-to-seed variation


def build_context(spec: SweepSpec, document: SweepDocument, pngs: Sequence[FigurePng]) -> SweepPage:
    """Return everything ``pages/sweep.html.j2`` displays."""
    embedded = {name: embed_png(name, f"figures/{name}.png", png, alt=alt, caption=caption)
                for name, png, alt, caption in pngs}  # fmt: skip
    return SweepPage(
        title=document.title,
        author=spec.points[0].config.run.author,
        **Page.dated(ReportDate.from_day(document.date)),
        source=Path(spec.source).name,
        doc=document,
        models=list(dict.fromkeys(m for p in document.points for m in p.models)),
        level=document.level,
        alpha=DEFAULT_ALPHA,
        run_count=len(document.runs),
        failed=[run for run in document.runs if run.status == "failed"],
        model_comparisons=[c for c in document.comparisons if c.scope == "models"],
        point_comparisons=[c for c in document.comparisons if c.scope == "points"],
        seed_figures=[embedded[f"seeds_{m}"] for m in SWEEP_METRICS],
        curve_figures=[f for name, f in embedded.items() if name.startswith("curves_")],
        effect_figures=[f for name, f in embedded.items() if name.startswith("effect_")],
        values={
            p.label: {k: value_text(v) for k, v in p.overrides.items()} for p in document.points
        },
        reference=document.points[0].label,
        run_reports=spec.run_reports,
        linked_reports=any(run.report is not None for run in document.runs),
        min_seeds=MIN_SEEDS_FOR_VARIATION,
    )
