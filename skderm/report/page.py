"""The report page: self-contained HTML (inline CSS, images as data URIs, no script).

Nothing on the page refers to another file or to a network, so it opens the
same from a laptop, an e-mail attachment or an air-gapped hospital machine.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from skderm.report.tables import INTERVAL_RATES, Evaluation, interval_note, per_class_text

__all__ = ["GENERATOR", "INTENDED_USE", "KNOWN_LIMITS", "render_page"]

#: The ``<meta name="generator">`` value that marks a page as a skderm report.
GENERATOR = "skderm report"

#: The plain statement of intended use, on every report and in the docs.
INTENDED_USE = (
    "For research use only. This model is not a medical device and has not been cleared "
    "or approved by any regulator; it must not be used to diagnose, treat or triage "
    "patients, nor to replace the judgement of a dermatologist.")

#: Limits every skderm model shares, whatever its recipe.
KNOWN_LIMITS = (
    "Trained and evaluated on dermoscopic images (HAM10000-like data); clinical "
    "(non-dermoscopic) photographs, other devices and other populations are out of "
    "distribution and may be scored with unwarranted confidence.",
    "HAM10000 holds mostly light skin types; performance on darker skin is unknown.",
    "The seven diagnostic classes do not cover every skin lesion; an image of anything "
    "else is still put in one of them.",
    "Figures measured on images of the training source overstate what a new clinic, "
    "device or population will see.",
    "Probabilities are calibrated only as far as the reliability diagram shows, and only "
    "on data like the evaluation data.",
)

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{border-bottom:2px solid #444}h2{margin-top:2em;border-bottom:1px solid #bbb}
table{border-collapse:collapse;margin:.8em 0;font-size:.92em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f2f2f2}
figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.9em;color:#555}
.notice{background:#fff4e5;border-left:5px solid #e08a00;padding:.7em 1em;font-weight:600}
nav a{margin-right:1em}code{background:#f4f4f4;padding:0 .2em}
"""

#: The sections of the page, in order: id -> heading.
SECTIONS = {
    "intended-use": "Intended use",
    "summary": "Summary",
    "per-class": "Per-class results",
    "confusion": "Confusion matrices",
    "curves": "ROC and precision-recall curves",
    "calibration": "Calibration",
    "risk-coverage": "Referral: risk-coverage",
    "operating-points": "Operating points",
    "top-losses": "Top losses",
    "most-confused": "Most-confused pairs",
    "model": "Model settings",
    "data": "Data summary",
    "model-card": "Model card",
}


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _value(value: Any) -> str:
    if isinstance(value, Mapping | list | tuple):
        return "<code>" + _e(json.dumps(value, default=str)) + "</code>"
    return _e(value)


def _pairs(mapping: Mapping | None) -> str:
    if not mapping:
        return "<p>Not recorded.</p>"
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_value(v)}</td></tr>" for k, v in mapping.items())
    return f"<table>{rows}</table>"


def _frame(frame: pd.DataFrame, *, index: bool = True) -> str:
    return frame.to_html(index=index, border=0, na_rep="n/a", float_format="{:.3f}".format,
                         escape=True)


def _figure(figures: dict, name: str, alt: str) -> str:
    if name not in figures:
        return ""
    uri, caption = figures[name]
    return (f'<figure><img src="{uri}" alt="{_e(alt)}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _operating_html(ev: Evaluation) -> str:
    parts = []
    for name, points in ev.operating.items():
        if isinstance(points, str):
            parts.append(f"<p><b>{_e(name)}</b>: {_e(points)}</p>")
            continue
        table = pd.DataFrame({
            "specificity at least": points["target"].map("{:.2f}".format),
            "sensitivity": points["estimate"], "low": points["low"], "high": points["high"],
            "threshold": points["threshold"]})
        parts.append(f"<h3>{_e(name)}</h3>" + _frame(table, index=False))
    return "".join(parts)


def _summary_html(ev: Evaluation, unit: str) -> str:
    overall = ev.overall[["estimate", "low", "high"]].rename(
        index={"balanced_accuracy": "balanced accuracy", "mcc": "MCC"})
    referral = pd.DataFrame({"refer the least confident": [f"{s:.0%}" for s in ev.referral],
                             "balanced accuracy on the rest": list(ev.referral.values())})
    return (f"<p>{len(ev.y_true)} images{unit}; {_e(interval_note(ev))}.</p>"
            + _frame(overall) + _frame(referral, index=False))


def _model_card(model_info: Mapping, data_summary: Mapping, ev: Evaluation) -> str:
    training = model_info.get("training_data", "Not recorded.")
    recipe = model_info.get("recipe", "Not recorded.")
    protocol = data_summary.get("protocol", "Not recorded: say how the evaluation images "
                                "were held out from training.")
    limits = list(KNOWN_LIMITS) + [str(x) for x in model_info.get("limits", ())]
    return (f"<h3>Intended use</h3><p>{_e(INTENDED_USE)}</p>"
            f"<h3>Training data</h3><p>{_value(training)}</p>"
            f"<h3>Recipe</h3><p>{_value(recipe)}</p>"
            "<h3>Figures and their protocol</h3>"
            f"<p>Every figure on this page is computed on the {len(ev.y_true)} evaluation "
            f"images, one prediction per image. Evaluation protocol: {_value(protocol)} "
            f"Intervals are {ev.confidence:.0%} percentile bootstrap intervals over "
            f"{ev.n_boot} resamples of "
            + ("whole lesions (images of one lesion are resampled together)."
               if ev.groups is not None else "images (no lesion ids were given).")
            + " Decisions are "
            + ("the model's decision rule, not the argmax of the probabilities."
               if ev.decided else "the argmax of the probabilities.")
            + "</p><h3>Known limits</h3><ul>"
            + "".join(f"<li>{_e(x)}</li>" for x in limits) + "</ul>")


def render_page(ev: Evaluation, figures: dict[str, tuple[str, str]], *,
                model_info: Mapping, data_summary: Mapping, title: str,
                images: Sequence[str] | None = None) -> str:
    """The whole page as a string; ``images`` name the top losses' files."""
    unit = "" if ev.groups is None else f" of {len(pd.unique(ev.groups))} lesions"
    ece = pd.DataFrame({"ECE": ev.ece_per_class}).T
    calibration = (
        f"<p>Top-label ECE {ev.calibration['ece']:.4f}; mean per-class (one-vs-rest) ECE "
        f"{ev.calibration['ece_per_class_mean']:.4f}; Brier score "
        f"{ev.calibration['brier']:.4f} (15 equal-width bins).</p>" + _frame(ece)
        + _figure(figures, "reliability", "reliability diagram"))
    losses = (_figure(figures, "top_losses", "top losses gallery") if "top_losses" in figures
              else "<p>No images were given, so no gallery.</p>")
    if ev.losses is not None and len(ev.losses):
        table = ev.losses.rename_axis("row")
        if images is not None:
            table.insert(0, "image", [os.path.basename(images[i]) for i in table.index])
        losses += _frame(table)
    per_class = per_class_text(ev).rename(columns={r: f"{r} [{ev.confidence:.0%} CI]"
                                                    for r in INTERVAL_RATES})
    body = {
        "intended-use": f'<p class="notice">{_e(INTENDED_USE)}</p>',
        "summary": _summary_html(ev, unit),
        "per-class": _frame(per_class),
        "confusion": _figure(figures, "confusion", "confusion matrices"),
        "curves": _figure(figures, "roc", "ROC curves") + _figure(figures, "pr", "PR curves"),
        "calibration": calibration,
        "risk-coverage": _figure(figures, "risk_coverage", "risk-coverage curve"),
        "operating-points": _operating_html(ev),
        "top-losses": losses,
        "most-confused": _frame(ev.confused, index=False) if ev.confused is not None
        and len(ev.confused) else "<p>No image was misclassified.</p>",
        "model": _pairs(model_info),
        "data": _pairs({"images": len(ev.y_true),
                        **({} if ev.groups is None else {"lesions": len(pd.unique(ev.groups))}),
                        "images per class": {str(k): int(v) for k, v in zip(
                            *np.unique(ev.y_true.astype(str), return_counts=True), strict=True)},
                        **data_summary}),
        "model-card": _model_card(model_info, data_summary, ev),
    }
    nav = "".join(f'<a href="#{key}">{_e(head)}</a>' for key, head in SECTIONS.items())
    sections = "".join(f'<section id="{key}"><h2>{_e(SECTIONS[key])}</h2>{body[key]}</section>'
                       for key in SECTIONS)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta name="generator" content="{GENERATOR}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{_e(title)}</h1><nav>{nav}</nav>{sections}</body></html>\n")
