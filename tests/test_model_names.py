"""Models of the user's names: one or two, the reference, and every key that names a model."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from reportgen.artifacts import catalogue
from reportgen.artifacts.layout import RUN_FILES
from reportgen.artifacts.metrics import Metrics
from reportgen.config.loading import load_config, validate
from reportgen.config.schema import RESERVED_MODEL_NAMES, ModelSection, model_name_problem
from reportgen.config.sweepspec import config_keys, load_sweep
from reportgen.config.toml import to_toml
from reportgen.core.errors import ConfigError
from reportgen.data.sources import SOURCES
from reportgen.data.tensors import Dataset, Split
from reportgen.evaluate import assemble
from reportgen.evaluate.gate import summary_markdown
from reportgen.evaluate.layers import LayerViews
from reportgen.evaluate.outcome import ModelOutcome
from reportgen.export.model_card import model_card
from reportgen.export.scalars import scalars
from reportgen.report import run_page
from reportgen.report.render import render_html
from reportgen.train.loop import EpochRecord
from tests import synthetic
from tests.conftest import QuickMnist, make_digits, make_quick_run

NAMED = "models={production={hidden=[32]}, candidate={hidden=[32], dropout=0.2}}"


def _config(text: str, *overrides: str, tmp_path: Path) -> object:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, list(overrides))


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize("name", ["production", "candidate-2", "m_1", "a", "a" * 32])
def test_a_safe_name_names_a_model(name: str) -> None:
    config = validate({"models": {name: {}}})
    assert [n for n, _ in config.model_items()] == [name]


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("Production", "a model name is a lowercase letter, then lowercase letters, digits"),
        ("2nd", "a model name is a lowercase letter"),
        ("_x", "a model name is a lowercase letter"),
        ("a.b", "a model name is a lowercase letter"),
        ("naïve", "a model name is a lowercase letter"),
        ("a" * 33, "at most 32 characters"),
        ("compare", "reserved for the run's own files"),
        ("significance", "reserved for the run's own files"),
    ],
)
def test_a_bad_name_is_one_line_naming_the_key_and_the_rule(name: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate({"models": {name: {}}}, source="c.toml")
    message = str(caught.value)
    assert message.startswith(f"c.toml: models.{name}: ") and problem in message
    assert "\n" not in message and "[key]" not in message


def test_a_bad_name_given_with_set_names_the_option() -> None:
    with pytest.raises(ConfigError, match=r"^--set 'models\.Prod\.kind=mlp': models\.Prod: a "):
        load_config(None, ["models.Prod.kind=mlp"])


@pytest.mark.parametrize(
    ("models", "match"),
    [
        ({}, r"^c\.toml: models: needs one or two models"),
        (
            {"a": {}, "b": {}, "c": {}},
            r"^c\.toml: models: at most two models \(one paired comparison\), got 3: a, b, c$",
        ),
        ({"a": 3}, r"^c\.toml: models\.a: must be a table of the model's settings"),
    ],
)
def test_none_or_three_models_are_refused(models: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        validate({"models": models}, source="c.toml")


def test_models_keep_the_order_written_and_only_regularized_gets_its_defaults(
    tmp_path: Path,
) -> None:
    config = _config(
        "[models.candidate]\nhidden = [64]\n[models.regularized]\nhidden = [64]\n",
        tmp_path=tmp_path,
    )
    assert list(config.models) == ["candidate", "regularized"]
    candidate, regularized = config.models["candidate"], config.models["regularized"]
    assert (candidate.dropout, candidate.batchnorm, candidate.scheduler) == (0.0, False, "none")
    assert (regularized.dropout, regularized.batchnorm, regularized.scheduler) == (
        0.3,
        True,
        "step",
    )
    assert config.compared() == ("candidate", "regularized")


def test_without_a_models_table_a_set_changes_the_default_models(tmp_path: Path) -> None:
    assert list(load_config(None, ["models.regularized.dropout=0.5"]).models) == [
        "baseline", "regularized",
    ]  # fmt: skip
    one = _config("[models.solo]\n", "models.solo.dropout=0.5", tmp_path=tmp_path)
    assert list(one.models) == ["solo"] and one.models["solo"].dropout == 0.5
    assert one.compared() is None


def test_reference_picks_what_the_other_model_is_compared_against() -> None:
    two = {"models": {"production": {}, "candidate": {}}}
    assert validate(two).compared() == ("production", "candidate")
    assert validate({**two, "reference": "candidate"}).compared() == ("candidate", "production")
    with pytest.raises(
        ConfigError, match=r"^c\.toml: reference: no model 'baseline' \(models: production, "
    ):
        validate({**two, "reference": "baseline"}, source="c.toml")


def test_reference_is_written_only_when_set() -> None:
    default = to_toml(load_config(None))
    assert "reference" not in default
    config = load_config(None, [f"{NAMED}", "reference=candidate"])
    text = to_toml(config)
    assert text.startswith('seed = 0\nreference = "candidate"\n')
    assert text.index("[models.production]") < text.index("[models.candidate]")
    assert validate(tomllib.loads(text)) == config


# --------------------------------------------------------------------------- keys by name


def test_gate_and_layer_keys_name_the_configured_models(tmp_path: Path) -> None:
    text = '[models.production]\n[models.candidate]\n[report]\nlayer = { candidate = "1" }\n'
    config = _config(text, tmp_path=tmp_path)
    assert config.layer("candidate") == "1" and config.layer("production") is None
    gated = load_config(tmp_path / "config.toml", fail_under=["candidate.test_accuracy=0.9"])
    assert gated.gate.fail_under == {"candidate.test_accuracy": 0.9}
    with pytest.raises(
        ConfigError,
        match=r"^--fail-under 'regularized\.test_accuracy=0\.9': gate\.fail_under: no model "
        r"'regularized' \(models: production, candidate\)$",
    ):
        load_config(tmp_path / "config.toml", fail_under=["regularized.test_accuracy=0.9"])
    with pytest.raises(ConfigError, match=r"gate\.fail_under\.baseline\.macro_f1: no model"):
        _config(text + '[gate]\nfail_under = { "baseline.macro_f1" = 0.5 }\n', tmp_path=tmp_path)
    with pytest.raises(ConfigError, match=r"report\.layer\.regularized: no such model"):
        _config(text.replace("candidate = ", "regularized = "), tmp_path=tmp_path)


def test_a_sweep_may_set_the_keys_of_its_base_models(tmp_path: Path) -> None:
    config = load_config(None, [NAMED])
    keys = config_keys(config)
    assert "models.candidate.dropout" in keys and "models.regularized.dropout" not in keys
    (tmp_path / "base.toml").write_text(
        "[models.production]\nhidden = [32]\n[models.candidate]\nhidden = [32]\n"
    )
    sweep = tmp_path / "sweep.toml"
    head = 'config = "base.toml"\nseeds = [0]\n[grid]\n'
    sweep.write_text(head + '"models.candidate.dropout" = [0.1, 0.2]\n')
    spec = load_sweep(sweep)
    assert [p.config.models["candidate"].dropout for p in spec.points] == [0.1, 0.2]
    assert all(list(p.config.models) == ["production", "candidate"] for p in spec.points)
    sweep.write_text(head + '"models.regularized.dropout" = [0.1]\n')
    with pytest.raises(ConfigError, match=r"'models\.regularized\.dropout' is not a config key"):
        load_sweep(sweep)


def test_no_valid_name_makes_two_figures_of_one_name() -> None:
    # A model's figure is NAME_SUFFIX: two models' names collide only if one suffix ends with
    # "_" + another, and a model's name collides with a run figure only if it is that
    # figure's name less a suffix; such names must be invalid or reserved.
    suffixes = [catalogue.figure_name(kind.kind, "")[1:] for kind in catalogue.FIGURES.values()
                if kind.scope in ("model", "attribution", "pair", "pair_attribution")]  # fmt: skip
    assert len(suffixes) > 10
    for first in suffixes:
        for second in suffixes:
            assert first == second or not first.endswith(f"_{second}")
    for kind in catalogue.kinds("run"):
        for suffix in suffixes:
            if kind.kind.endswith(f"_{suffix}"):
                assert model_name_problem(kind.kind[: -len(suffix) - 1]) is not None
    assert "compare" in RESERVED_MODEL_NAMES  # compare_curves = the curves of "compare"


# --------------------------------------------------------------------------- the comparison


def _outcome(name: str, dataset: Dataset, seed: int) -> ModelOutcome:
    rng = np.random.default_rng(seed)
    y = dataset.test.y.numpy()
    hits = np.where(rng.random(len(y)) < 0.5 + 0.2 * seed, y, (y + 1) % 10)
    logits = rng.normal(size=(len(y), 10)) + 4 * np.eye(10)[hits]
    proba = (np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)).astype(np.float32)
    history = [EpochRecord(1, 0.5, 0.8, 0.4, 0.8, 1e-3)]
    model = torch.nn.Linear(1, 1)
    return ModelOutcome(name, ModelSection(), history, None, 0, proba, 0.9, {}, model,
                        logits, logits, LayerViews(None, "Neuron", None, {}))  # fmt: skip


def test_reference_flips_the_direction_of_every_comparison() -> None:
    images, y = make_digits(100, seed=3)
    info = SOURCES["mnist"].info()
    split = Split(torch.from_numpy(images).unsqueeze(1), torch.from_numpy(y).long(),
                  torch.arange(100), info.mean, info.std)  # fmt: skip
    dataset = Dataset(split, split, split, info)
    outcomes = [_outcome("production", dataset, 0), _outcome("candidate", dataset, 1)]
    sets = [NAMED, "report.bootstrap_resamples=100", "report.attributions=false"]
    forward = assemble.build_metrics(load_config(None, sets), outcomes, dataset).significance
    flipped = assemble.build_metrics(
        load_config(None, [*sets, "reference=candidate"]), outcomes, dataset
    ).significance
    assert forward is not None and flipped is not None
    assert forward.models == ("production", "candidate") and flipped.models[::-1] == forward.models
    assert (flipped.mcnemar.b, flipped.mcnemar.c) == (forward.mcnemar.c, forward.mcnemar.b)
    assert flipped.difference.estimate == pytest.approx(-forward.difference.estimate)
    assert forward.difference.estimate > 0.1  # the candidate is the better one here
    assert "candidate" in forward.verdict and "production" in flipped.verdict
    assert [r.estimate for r in flipped.class_recall.classes] == pytest.approx(
        [-r.estimate for r in forward.class_recall.classes]
    )


# --------------------------------------------------------------------------- one model


def test_one_model_reads_as_one_in_the_summary_and_model_card() -> None:
    def drop(data: dict[str, Any]) -> None:
        data["models"].pop("regularized")
        data["comparison"] = data["comparison"][:1]
        data["significance"] = None
        data["label_issues"] = None
        figures = data["figures"].items()
        data["figures"] = {
            k: v for k, v in figures
            if k.split("_")[0] not in ("regularized", "compare") and k != "label_issues"
        }  # fmt: skip

    one = synthetic.edited(drop)
    config = load_config(None, ["models={baseline={}}"])
    card = model_card(config, one)
    assert "# Model card: MNIST classifier\n" in card
    assert "one image classifier trained and evaluated. Author" in card
    assert "What the model is for" in card and "the models" not in card
    assert "Intervals are percentile bootstrap intervals over the test images.\n" in card
    assert "| baseline |" in summary_markdown(one, []) and "regularized" not in card
    assert not any(key.startswith("significance.") for key in scalars(one))


@pytest.fixture(scope="module")
def named_run(quick_mnist: QuickMnist, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny run of two models named production and candidate."""
    return make_quick_run(
        quick_mnist, tmp_path_factory.mktemp("named") / "run", NAMED, "train.epochs=1",
        "data.limit_train=200", "data.limit_test=100", "data.val_size=50",
        "report.attributions=false", "report.bootstrap_resamples=100",
    )  # fmt: skip


def test_a_run_of_two_named_models_uses_the_names_everywhere(named_run: Path) -> None:
    metrics = Metrics.model_validate_json((named_run / "metrics.json").read_text())
    assert list(metrics.models) == ["production", "candidate"]
    assert metrics.significance is not None
    assert metrics.significance.models == ("production", "candidate")
    for name in ("production", "candidate"):
        assert (named_run / RUN_FILES.weights(name)).is_file()
        assert (named_run / RUN_FILES.curves(name)).is_file()
        assert (named_run / RUN_FILES.figure(f"{name}_curves")).is_file()
    figures = {p.stem for p in (named_run / "figures").glob("*.png")}
    assert figures == set(metrics.figures)
    assert not any(f.startswith(("baseline", "regularized")) for f in figures)
    assert {"production.test_accuracy", "candidate.test_accuracy", "significance.p_value"} <= set(
        json.loads((named_run / "scalars.json").read_text())
    )
    html = (named_run / "report.html").read_text(encoding="utf-8")
    assert "Paired comparison of production and candidate" in html
    assert "Model: candidate" in html and "regularized" not in html.split("Reproducibility")[0]
    assert "[models.production]" in (named_run / "config.toml").read_text()


def test_a_one_model_page_has_no_empty_comparison(named_run: Path) -> None:
    page = run_page.build_context(named_run)
    one = dataclasses.replace(
        page, models=page.models[1:], significance=None, class_recall_rows=None,
        shared_figures=[f for f in page.shared_figures if f.name != "compare_curves"],
    )  # fmt: skip
    html = render_html(one)
    assert '<h2 id="comparison-title">Training and accuracy</h2>' in html
    assert "The model is trained with the adam optimizer" in html
    for absent in ("Both models", "Is the difference significant", "Model comparison",
                   "Model: production"):  # fmt: skip
        assert absent not in html
