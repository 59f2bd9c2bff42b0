"""Options that set config keys: --fail-if-worse, and evaluate's model options."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reportgen.cli.main import build_parser, main
from reportgen.config.loading import load_config
from reportgen.config.shortcuts import (
    NO_MODEL,
    Setting,
    apply_settings,
    evaluate_settings,
    evaluated_models,
    fail_if_worse,
)
from reportgen.core.errors import ConfigError

RULE = "must be a margin in percentage points, a number from 0 to 100, e.g. 0.5"

# --------------------------------------------------------------------------- --fail-if-worse


@pytest.mark.parametrize(
    ("flags", "margin"),
    [([], None), (["--fail-if-worse"], 0.0), (["--fail-if-worse", "0.5"], 0.5),
     (["--fail-if-worse", "2"], 2.0)],
)  # fmt: skip
@pytest.mark.parametrize("command", ["run", "evaluate"])
def test_fail_if_worse_flag(flags: list[str], margin: float | None, command: str) -> None:
    args = build_parser().parse_args([command, *flags])
    settings = [] if args.fail_if_worse is None else [fail_if_worse(args.fail_if_worse)]
    assert load_config(None, settings=settings).gate.fail_if_worse == margin


def test_the_flag_overrides_the_config_key(tmp_path: Path) -> None:
    config = tmp_path / "gate.toml"
    config.write_text("[gate]\nfail_if_worse = 0.5\n")
    assert load_config(config).gate.fail_if_worse == 0.5
    assert load_config(config, settings=[fail_if_worse("0")]).gate.fail_if_worse == 0.0


@pytest.mark.parametrize("value", ["abc", "-1", "101", "nan", "inf"])
def test_a_bad_margin_is_one_line_naming_the_flag_the_key_and_the_rule(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["run", "--out", str(out), "--fail-if-worse", value]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"reportgen: error: --fail-if-worse {value!r}: gate.fail_if_worse: ")
    assert RULE in err
    assert not out.exists()


@pytest.mark.parametrize("value", ["-0.5", "true", '"x"', "[1]"])
def test_a_bad_config_value_names_the_key_and_the_rule(value: str, tmp_path: Path) -> None:
    config = tmp_path / "gate.toml"
    config.write_text(f"[gate]\nfail_if_worse = {value}\n")
    with pytest.raises(ConfigError, match=rf"^{config}: gate\.fail_if_worse: {RULE}"):
        load_config(config)


# --------------------------------------------------------------------------- evaluate's options


def test_evaluate_options_are_config_settings() -> None:
    settings = evaluate_settings(
        predictions=["production=prod.csv", "candidate=runs/cand.npz"],
        checkpoints=["trained=model.ckpt"],
        reference="production",
    )
    assert settings == [
        Setting(("models", "production", "predictions"), "prod.csv",
                "--predictions 'production=prod.csv'"),
        Setting(("models", "candidate", "predictions"), "runs/cand.npz",
                "--predictions 'candidate=runs/cand.npz'"),
        Setting(("models", "trained", "checkpoint"), "model.ckpt",
                "--checkpoint 'trained=model.ckpt'"),
        Setting(("reference",), "production", "--reference 'production'"),
    ]  # fmt: skip


def test_a_path_stays_a_string() -> None:
    # Not read as TOML: a file called 1.5 or true is still a file name.
    (setting,) = evaluate_settings(predictions=["m=1.5"], reference=None)
    assert setting.value == "1.5"


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("prod.csv", "expected NAME=FILE"),
        ("=prod.csv", "expected NAME=FILE"),
        ("production=", "expected NAME=FILE"),
        ("a.b=prod.csv", "the model name 'a.b' must be letters, digits"),
        ("two words=prod.csv", "the model name 'two words' must be"),
    ],
)
def test_a_bad_model_file_option_is_one_line(item: str, message: str) -> None:
    with pytest.raises(ConfigError, match=rf"^--predictions {item!r}: {message}"):
        evaluate_settings(predictions=[item], reference=None)


def test_a_model_named_twice_is_refused() -> None:
    with pytest.raises(ConfigError, match="--checkpoint names the model 'm' twice"):
        evaluate_settings(checkpoints=["m=a.pt", "m=b.pt"], reference=None)


CONFIG: dict[str, Any] = {
    "train": {"epochs": 3},
    "models": {
        "production": {"kind": "cnn", "hidden": [64]},
        "trained": {"kind": "mlp"},
        "kept": {"kind": "mlp", "checkpoint": "kept.pt"},
    },
}


def test_evaluate_keeps_only_models_with_weights_or_predictions_and_their_tables() -> None:
    settings = evaluate_settings(
        predictions=["production=prod.csv", "candidate=cand.csv"], reference="candidate"
    )
    data, origins = apply_settings(CONFIG, settings)
    data = evaluated_models(data)
    assert data["models"] == {
        "production": {"kind": "cnn", "hidden": [64], "predictions": "prod.csv"},
        "kept": {"kind": "mlp", "checkpoint": "kept.pt"},
        "candidate": {"predictions": "cand.csv"},
    }
    assert data["reference"] == "candidate" and data["train"] == {"epochs": 3}
    assert origins[("models", "candidate", "predictions")] == "--predictions 'candidate=cand.csv'"
    assert CONFIG["models"]["production"] == {"kind": "cnn", "hidden": [64]}  # not changed


@pytest.mark.parametrize("data", [{}, {"models": {"a": {"kind": "mlp"}}}])
def test_evaluate_without_a_model_says_how_to_give_one(data: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as caught:
        evaluated_models(data)
    assert str(caught.value) == NO_MODEL
    assert "--predictions NAME=FILE" in NO_MODEL and "--checkpoint NAME=FILE" in NO_MODEL


def test_a_setting_under_a_value_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^--predictions 'm=p.csv': models is a value"):
        apply_settings({"models": 3}, evaluate_settings(predictions=["m=p.csv"], reference=None))


def test_evaluate_command_without_a_model_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./config.toml: the built-in defaults, which train
    assert main(["evaluate", "--out", str(tmp_path / "out"), "--fail-if-worse", "0.5"]) == 2
    assert capsys.readouterr().err == f"reportgen: error: {NO_MODEL}\n"
    assert not (tmp_path / "out").exists()
