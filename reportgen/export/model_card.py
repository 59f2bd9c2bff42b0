"""``model_card.md``: the run's models described for whoever receives them.

The sections follow Mitchell et al., "Model Cards for Model Reporting" (FAT*
2019); the YAML front matter is the Hugging Face card format, whose
``model-index`` lists each model's test accuracy and macro F1, so a hub or a
leaderboard reads the numbers without parsing prose.  Every number comes
from ``metrics.json`` and the resolved config; what only a person can say
(intended use, ethical considerations) is a marked placeholder.  The text
depends on nothing but the run (no clock, no paths), so equal runs give
equal bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from reportgen.artifacts.metrics import (
    Metrics,
)
from reportgen.artifacts.model_metrics import (
    ModelMetrics,
)
from reportgen.config.schema import Config, ModelSection
from reportgen.core.text import MISSING, count, level, num, pct
from reportgen.core.version import VERSION

PLACEHOLDER = "**[To be written by a person]**"
TASK = "image-classification"


def _yaml_str(text: str) -> str:
    """Return ``text`` as a YAML scalar: a JSON string is a valid double-quoted YAML string."""
    return json.dumps(text, ensure_ascii=False)


def front_matter(metrics: Metrics) -> str:
    """Return the card's YAML front matter (between ``---`` lines), Hugging Face's fields."""
    dataset = metrics.dataset
    lines = [
        "---",
        "library_name: pytorch",
        "tags:",
        *(f"- {_yaml_str(tag)}" for tag in (TASK, "pytorch", "reportgen", dataset.kind)),
        f"pipeline_tag: {TASK}",
        "metrics:",
        "- accuracy",
        "- f1",
        "model-index:",
    ]
    for name, model in metrics.models.items():
        lines += [
            f"- name: {_yaml_str(f'{metrics.run.name}/{name}')}",
            "  results:",
            "  - task:",
            f"      type: {TASK}",
            "      name: Image Classification",
            "    dataset:",
            f"      name: {_yaml_str(dataset.name)}",
            f"      type: {_yaml_str(dataset.kind)}",
            "      split: test",
            "    metrics:",
        ]
        macro_f1 = None if model.classification_report is None else (
            model.classification_report.macro_avg.f1
        )  # fmt: skip
        for kind, label, value, extra in (
            ("accuracy", "test accuracy", model.test_accuracy, ""),
            ("f1", "macro F1", macro_f1, "      args:\n        average: macro\n"),
        ):
            if value is not None:  # a value not measured is not listed
                lines.append(
                    f"    - type: {kind}\n      value: {value!r}\n"
                    f"      name: {_yaml_str(f'{name}: {label}')}\n{extra}".rstrip("\n")
                )
    lines.append("---")
    return "\n".join(lines) + "\n"


def _architecture(section: ModelSection) -> str:
    if section.kind == "python":
        return f"the user's network `{section.factory}`"
    if section.kind == "cnn":
        return "a convolutional network"
    hidden = " → ".join(str(units) for units in section.hidden)
    return f"a multilayer perceptron (hidden layers {hidden})"


def _regularization(section: ModelSection) -> str:
    parts = [
        f"dropout {section.dropout}" if section.dropout else "",
        f"weight decay {section.weight_decay}" if section.weight_decay else "",
        "batch normalization" if section.batchnorm else "",
        f"{section.scheduler} learning-rate schedule" if section.scheduler != "none" else "",
    ]
    found = [part for part in parts if part]
    return ", ".join(found) if found else "none"


def _details(config: Config, metrics: Metrics) -> Iterator[str]:
    yield "## Model details"
    yield ""
    date = f", dated {config.run.date}" if config.run.date else ""
    models = "one image classifier trained and evaluated"
    if len(metrics.models) > 1:
        models = f"{len(metrics.models)} image classifiers trained and evaluated side by side"
    yield (f"Run `{metrics.run.name}` of reportgen {VERSION}{date}, seed {metrics.run.seed}: "
           f"{models}. Author: {config.run.author}. License: {PLACEHOLDER}.")  # fmt: skip
    yield ""
    yield "| model | architecture | parameters | regularization | epochs |"
    yield "| --- | --- | --- | --- | --- |"
    for name, section in config.model_items():
        model = metrics.models.get(name)
        parameters = (MISSING if model is None or model.parameters is None
                      else f"{model.parameters:,}")  # fmt: skip
        epochs = MISSING if model is None else str(model.epochs)
        yield (f"| {name} | {_architecture(section)} | {parameters} | "
               f"{_regularization(section)} | {epochs} |")  # fmt: skip
    yield ""


def _data(config: Config, metrics: Metrics) -> Iterator[str]:
    dataset = metrics.dataset
    channels, height, width = dataset.image_shape
    yield "## Training data and procedure"
    yield ""
    yield (f"{dataset.name}: {dataset.train_size:,} training images, {dataset.val_size:,} "
           f"validation images held out from the training set; {len(dataset.classes)} classes; "
           f"images of {channels} × {height} × {width}. Identified by "
           f"{dataset.fingerprint.method} (`reportgen verify` checks it).")  # fmt: skip
    yield ""
    train = config.train
    yield (f"Optimizer {train.optimizer}, learning rate {train.lr}, batch size "
           f"{config.data.batch_size}, at most {count(train.epochs, 'epoch')}; the full "
           "settings are in the run's `config.toml`.")  # fmt: skip
    yield ""
    yield "## Evaluation data"
    yield ""
    support = ", ".join(f"{label}: {count}" for label, count
                        in zip(dataset.classes, dataset.test_support, strict=True))  # fmt: skip
    yield f"The test split: {dataset.test_size:,} images. Per class: {support}."
    yield ""


def _metrics_table(metrics: Metrics) -> Iterator[str]:
    yield "## Metrics"
    yield ""
    coverage = next((m.accuracy_ci.level for m in metrics.models.values() if m.accuracy_ci), 0.95)
    yield (f"| model | test accuracy | {level(coverage)} interval | macro F1 | test loss (NLL) "
           "| macro AUC |")  # fmt: skip
    yield "| --- | --- | --- | --- | --- | --- |"
    for name, model in metrics.models.items():
        ci = model.accuracy_ci
        interval = MISSING if ci is None else f"{pct(ci.low)} – {pct(ci.high)}"
        report = model.classification_report
        macro_f1 = None if report is None else report.macro_avg.f1
        auc = None if model.one_vs_rest is None else model.one_vs_rest.macro_auc
        yield (f"| {name} | {pct(model.test_accuracy)} | {interval} | {num(macro_f1)} | "
               f"{num(model.test_loss)} | {num(auc)} |")  # fmt: skip
    yield ""
    yield ("Intervals are percentile bootstrap intervals over the test images."
           + (f" {metrics.significance.verdict}" if metrics.significance else ""))  # fmt: skip
    yield ""


def _calibration(metrics: Metrics) -> Iterator[str]:
    yield "## Calibration"
    yield ""
    yield "| model | ECE | ECE after temperature scaling | temperature | Brier score |"
    yield "| --- | --- | --- | --- | --- |"
    verdicts = []
    for name, model in metrics.models.items():
        c = model.calibration
        if c is None:
            yield f"| {name} | {' | '.join([MISSING] * 4)} |"
            continue
        yield (f"| {name} | {num(c.ece)} | {num(c.ece_scaled)} | "
               f"{num(c.temperature)} | {num(c.brier)} |")  # fmt: skip
        verdicts.append(f"{name}: {c.verdict}")
    yield ""
    yield from (f"- {verdict}" for verdict in verdicts)
    yield ""


def _weak_spots(metrics: Metrics, model: ModelMetrics) -> str:
    classes = metrics.dataset.classes
    rows = {row.label: row for row in model.class_errors or []}
    spots = []
    for label in model.worst_classes or []:
        row = rows[label]
        wrong = ("" if row.top_wrong_prediction is None
                 else f", most often taken for {classes[row.top_wrong_prediction]}")  # fmt: skip
        spots.append(f"{classes[label]} ({pct(row.error_rate)} wrong{wrong})")
    return "; ".join(spots) if spots else "no class has errors"


def _divergence(model: ModelMetrics) -> str:
    """Return why a diverged model's numbers are not meaningful, in one sentence."""
    divergence = model.divergence
    assert divergence is not None
    if divergence.epoch is None:  # the training loss stayed finite, the eval-mode logits did not
        return "its logits in eval mode are not finite, although its training loss was."
    logits = "" if divergence.finite_logits else "; its logits are not finite"
    return f"training diverged in epoch {divergence.epoch}{logits}."


def _analyses(metrics: Metrics) -> Iterator[str]:
    yield "## Quantitative analyses: weak spots"
    yield ""
    for name, model in metrics.models.items():
        if model.divergence is not None:
            yield f"- {name}: {_divergence(model)}"
            continue
        yield f"- {name}: weakest classes: {_weak_spots(metrics, model)}."
        if model.diagnosis is not None:
            yield f"  Training curves: {model.diagnosis.summary}"
    yield ""
    yield "The report (`report.html`) shows every per-class number with its interval."
    yield ""


# The sections only a person can write, and what each should say.
FOR_A_PERSON = {
    "Intended use": "What the models are for, for whom, and which uses are out of scope.",
    "Factors": "Which groups, instruments or environments the performance may vary across.",
    "Ethical considerations": "Risks, sensitive data, and how they were mitigated.",
    "Caveats and recommendations": "What a user of the models should know beyond the numbers.",
}


# The same, for a run of one model.
FOR_A_PERSON_ONE = {
    **FOR_A_PERSON,
    "Intended use": "What the model is for, for whom, and which uses are out of scope.",
    "Caveats and recommendations": "What a user of the model should know beyond the numbers.",
}


def _for_a_person(*titles: str, models: int) -> Iterator[str]:
    for title in titles:
        yield f"## {title}"
        yield ""
        yield f"{PLACEHOLDER} {(FOR_A_PERSON if models > 1 else FOR_A_PERSON_ONE)[title]}"
        yield ""


def model_card(config: Config, metrics: Metrics) -> str:
    """Return ``model_card.md``: front matter, then the sections of Mitchell et al."""
    kind = "classifiers" if len(metrics.models) > 1 else "classifier"
    title = config.run.title or f"{metrics.dataset.name.split(' (')[0]} {kind}"
    parts = [front_matter(metrics), f"# Model card: {title}", "",
             "Generated by reportgen from this run's `metrics.json`; the sections marked "
             f"{PLACEHOLDER} are for a person to fill in.", ""]  # fmt: skip
    for section in (
        _details(config, metrics),
        _for_a_person("Intended use", "Factors", models=len(metrics.models)),
        _data(config, metrics),
        _metrics_table(metrics),
        _calibration(metrics),
        _analyses(metrics),
        _for_a_person(
            "Ethical considerations", "Caveats and recommendations", models=len(metrics.models)
        ),
    ):
        parts.extend(section)
    return "\n".join(parts).rstrip("\n") + "\n"
