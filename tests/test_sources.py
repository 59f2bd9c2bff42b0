"""Models that are not trained: checkpoints, predictions files, the manifest's inputs, verify."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from reportgen.artifacts.tables import PROBABILITY_FORMAT, csv_bytes, predictions_frame
from reportgen.config.loading import anchor_paths, validate
from reportgen.config.schema import ModelSection
from reportgen.core.errors import ConfigError
from reportgen.data import idx
from reportgen.data.predictions import SUM_TOLERANCE, read_predictions
from reportgen.evaluate import calibration
from reportgen.run.verify import input_problem
from reportgen.train import pretrained
from reportgen.train.factory import build_network
from tests.conftest import QuickMnist, quick_overrides

N, K = 40, 4
KEY = "models.m.predictions"


def _probabilities(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, K, N)
    logits = rng.normal(scale=4.0, size=(N, K)).astype(np.float32)
    proba = torch.softmax(torch.from_numpy(logits), dim=1).numpy()
    return labels, logits, proba


def _own_csv(path: Path, proba: dict[str, np.ndarray], labels: np.ndarray) -> Path:
    frame = predictions_frame(proba, labels=labels, index=np.arange(N), classes=list("abcd"))
    path.write_bytes(csv_bytes(frame, float_format=PROBABILITY_FORMAT))
    return path


# --------------------------------------------------------------------------- readers


def test_own_predictions_csv_reads_back_bit_for_bit(tmp_path: Path) -> None:
    labels, _, proba = _probabilities()
    other = proba[::-1].copy()
    path = _own_csv(tmp_path / "predictions.csv", {"baseline": proba, "other": other}, labels)
    read = read_predictions(path, key=KEY, labels=labels, num_classes=K, model="other",
                            chunk_rows=7)  # fmt: skip
    assert read.kind == "probabilities" and read.scores.dtype == np.float32
    assert np.array_equal(read.scores, other)  # exact: nine significant digits round-trip
    assert np.array_equal(read_predictions(path, key=KEY, labels=labels, num_classes=K,
                                           model="baseline").scores, proba)  # fmt: skip


def test_csv_of_logits_in_any_order_and_npz(tmp_path: Path) -> None:
    labels, logits, proba = _probabilities()
    order = np.random.default_rng(1).permutation(N)
    lines = ["index,label," + ",".join(f"logit{k}" for k in range(K))]
    lines += [f"{i},{labels[i]}," + ",".join(f"{v:.9g}" for v in logits[i]) for i in order]
    (tmp_path / "l.csv").write_text("\n".join(lines) + "\n")
    read = read_predictions(tmp_path / "l.csv", key=KEY, labels=labels, num_classes=K)
    assert read.kind == "logits" and np.array_equal(read.scores, logits)
    np.savez(tmp_path / "p.npz", probabilities=proba[order], labels=labels[order], index=order)
    read = read_predictions(tmp_path / "p.npz", key=KEY, labels=labels, num_classes=K)
    assert read.kind == "probabilities" and np.array_equal(read.scores, proba)
    np.savez(tmp_path / "q.npz", probabilities=proba, labels=labels)  # no index: test order
    assert np.array_equal(
        read_predictions(tmp_path / "q.npz", key=KEY, labels=labels, num_classes=K).scores, proba
    )


def _csv(rows: list[tuple[int, int, list[float]]], header: str = "") -> str:
    head = header or "index,label," + ",".join(f"p{k}" for k in range(K))
    return "\n".join([head, *(f"{i},{y}," + ",".join(map(str, p)) for i, y, p in rows)]) + "\n"


_ROW = [0.25, 0.25, 0.25, 0.25]
_LABELS = np.array([0, 1, 2], dtype=np.int64)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_csv([(0, 0, _ROW), (1, 1, [float("nan"), 0.5, 0.25, 0.25]), (2, 2, _ROW)]),
         r"line 3: a score is not finite"),
        (_csv([(0, 0, _ROW), (1, 1, [0.5, 0.5, 0.5, 0.5]), (2, 2, _ROW)]),
         r"line 3: the probabilities sum to 2, not 1 \(within 0.001\)"),
        (_csv([(0, 0, _ROW), (1, 1, [1.5, -0.5, 0, 0]), (2, 2, _ROW)]),
         r"line 3: a probability outside \[0, 1\]"),
        ("index,label,p0,p1,p2\n0,0,0.5,0.25,0.25\n",
         r"has 3 score columns \(p0, p1, p2\); the data have 4 classes: p0 … p3"),
        (_csv([(0, 0, _ROW), (0, 0, _ROW), (2, 2, _ROW)]), r"index 0 is given twice"),
        (_csv([(0, 0, _ROW), (2, 2, _ROW)]), r"1 test image of 3 have no row \(missing index 1\)"),
        (_csv([(0, 0, _ROW), (1, 3, _ROW), (2, 2, _ROW)]),
         r"line 3: label 3 at index 1, but the test split's label there is 1"),
        (_csv([(0, 0, _ROW), (1, 1, _ROW), (5, 2, _ROW)]),
         r"line 4: index 5 is outside the test split of 3 images"),
        ("index,label,p0,p1,p2,p3,logit0,logit1,logit2,logit3\n", r"has both p<k> and logit<k>"),
        ("index,p0,p1,p2,p3\n", r"lacks the column\(s\) label"),
        ("model,index,label,p0,p1,p2,p3\na,0,0,1,0,0,0\nb,0,0,1,0,0,0\n",
         r"holds the predictions of 'a', 'b' and none named 'm'; choose one with "
         r"predictions_model$"),
    ],
)  # fmt: skip
def test_csv_problems_are_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"^{KEY}: {path}: {message}") as caught:
        read_predictions(path, key=KEY, labels=_LABELS, num_classes=K, model="m")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"labels": _LABELS}, r"needs 'probabilities' or 'logits'"),
        ({"probabilities": np.full((3, 3), 1 / 3), "labels": _LABELS},
         r"'probabilities' has shape \[3, 3\]; the data have 4 classes"),
        ({"logits": np.zeros((2, K)), "labels": _LABELS[:2]}, r"has 2 rows and no 'index'"),
        ({"logits": np.zeros((3, K)), "labels": _LABELS, "index": np.array([0, 1, 1])},
         r"index 1 is given twice"),
        ({"logits": np.full((3, K), np.inf), "labels": _LABELS}, r"row 0: a score is not finite"),
    ],
)  # fmt: skip
def test_npz_problems_are_one_line(
    tmp_path: Path, arrays: dict[str, np.ndarray], message: str
) -> None:
    np.savez(tmp_path / "bad.npz", **arrays)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=message):
        read_predictions(tmp_path / "bad.npz", key=KEY, labels=_LABELS, num_classes=K)


def test_missing_predictions_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no such file$"):
        read_predictions(tmp_path / "none.csv", key=KEY, labels=_LABELS, num_classes=K)
    assert SUM_TOLERANCE == 1e-3  # documented in docs/own-data.md


# --------------------------------------------------------------------------- checkpoints


def _network(hidden: int = 8) -> torch.nn.Module:
    spec = ModelSection(hidden=(hidden,))
    return build_network("m", spec, input_shape=(1, 4, 4), num_classes=3)


def _spec(path: Path, **keys: str) -> ModelSection:
    return ModelSection(hidden=(8,), checkpoint=str(path), **keys)


def test_lightning_checkpoint_and_safetensors_load(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    source = _network()
    state = {f"model.{k}": v for k, v in source.state_dict().items()}
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "last.ckpt")
    loaded = pretrained.load_weights(
        "m", _spec(tmp_path / "last.ckpt", checkpoint_key="state_dict",
                   checkpoint_prefix="model."), _network(),
    )  # fmt: skip
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in source.state_dict().items())
    save_file(source.state_dict(), tmp_path / "m.safetensors")
    loaded = pretrained.load_weights("m", _spec(tmp_path / "m.safetensors"), _network())
    assert torch.equal(loaded.state_dict()["head.weight"], source.state_dict()["head.weight"])


class _NotWeights:
    pass


def test_checkpoint_problems_are_one_line(tmp_path: Path) -> None:
    source = _network()
    torch.save({"state_dict": {f"model.{k}": v for k, v in source.state_dict().items()}},
               tmp_path / "nested.ckpt")  # fmt: skip
    torch.save(_network(16).state_dict(), tmp_path / "wide.pt")
    torch.save({"a": _NotWeights()}, tmp_path / "code.pt")
    cases = [
        (_spec(tmp_path / "none.pt"), r"none.pt: no such file$"),
        (_spec(tmp_path / "nested.ckpt"), r"is not a state dict .*needs checkpoint_key$"),
        (_spec(tmp_path / "nested.ckpt", checkpoint_key="model"),
         r"has no 'model' \(checkpoint_key\) \(its keys: 'state_dict'\)$"),
        (_spec(tmp_path / "nested.ckpt", checkpoint_key="state_dict"),
         r"does not fit the network: missing 4 key\(s\): hidden.0.0.weight, hidden.0.0.bias, "
         r"head.weight, …; unexpected 4 key\(s\): model.hidden.0.0.weight, .*"
         r'\(set checkpoint_prefix = "model."\)$'),
        (_spec(tmp_path / "wide.pt"),
         r"hidden.0.0.weight has shape \[16, 16\] in the checkpoint, \[8, 16\] in the network$"),
        (_spec(tmp_path / "code.pt"),
         r"not a state dict torch.load\(weights_only=True\) can read .*Unsupported global"),
    ]  # fmt: skip
    for spec, message in cases:
        with pytest.raises(ConfigError, match=rf"^models.m.checkpoint: .*{message}") as caught:
            pretrained.load_weights("m", spec, _network())
        assert "\n" not in str(caught.value)


# --------------------------------------------------------------------------- config


def test_untrained_keys_and_their_paths(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="checkpoint and predictions exclude each other"):
        ModelSection(checkpoint="a.pt", predictions="p.csv")
    with pytest.raises(ValueError, match="checkpoint_prefix applies to a model with a checkpoint"):
        ModelSection(checkpoint_prefix="model.")
    assert ModelSection(predictions="p.csv").source == "predictions"
    data = anchor_paths(
        {"models": {"baseline": {"checkpoint": "w/a.pt"}, "regularized": {"predictions": "/p"}}},
        "project",
    )
    assert data["models"] == {"baseline": {"checkpoint": "project/w/a.pt"},
                              "regularized": {"predictions": "/p"}}  # fmt: skip
    # The regularized defaults still fill in; training-only keys are simply unused.
    config = validate({"models": {"regularized": {"predictions": "p.csv"}}})
    assert config.models["regularized"].dropout == 0.3 and list(config.models) == ["regularized"]
    with pytest.raises(ValueError, match="predictions_model applies to a model with predictions"):
        ModelSection(predictions_model="baseline")


def test_calibration_without_validation_logits() -> None:
    labels, _, proba = _probabilities()
    result = calibration.calibrate_probabilities(
        proba, labels, nll=calibration.probability_nll(proba, labels)
    )
    assert result.temperature is None and result.equal_mass_scaled is None
    expected = -np.mean(np.log(proba[np.arange(N), labels].astype(np.float64)))
    assert result.nll == pytest.approx(expected, rel=1e-12)
    assert "no temperature is fitted" in calibration.confidence_verdict("m", result)
    zero = np.eye(K, dtype=np.float32)[(labels + 1) % K]  # certain and always wrong
    assert calibration.probability_nll(zero, labels) == pytest.approx(-np.log(1e-12))


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def evaluated(
    quick_run: Path, quick_mnist: QuickMnist, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """``reportgen evaluate`` of quick_run's baseline checkpoint and regularized predictions.

    Under names of the user's: ``production`` (the reference) and ``candidate``, gated.
    """
    from reportgen.cli.main import main

    inputs = tmp_path_factory.mktemp("inputs")
    shutil.copy(quick_run / "models" / "baseline.pt", inputs / "baseline.pt")
    shutil.copy(quick_run / "predictions.csv", inputs / "predictions.csv")
    out = inputs.parent / "evaluated"
    sets = [
        *quick_overrides(quick_mnist.root),
        "runtime.threads=2",
        "report.render=false",
        "report.attributions=false",
        "models.candidate.predictions_model=regularized",
    ]
    options = ["--checkpoint", f"production={inputs / 'baseline.pt'}",
               "--predictions", f"candidate={inputs / 'predictions.csv'}",
               "--reference", "production", "--fail-if-worse", "0.5"]  # fmt: skip
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(idx, "MNIST_FILES", quick_mnist.specs)
        args = [a for s in sets for a in ("--set", s)]
        assert main(["--quiet", "evaluate", "--out", str(out), *args, *options]) == 0
    return out, inputs


def test_a_runs_files_re_report_exactly(quick_run: Path, evaluated: tuple[Path, Path]) -> None:
    out, _ = evaluated
    before = json.loads((quick_run / "metrics.json").read_text())
    after = json.loads((out / "metrics.json").read_text())
    # The checkpoint gives the run's test metrics exactly (one forward pass, same weights).
    assert sorted(after["models"]) == ["candidate", "production"]
    old, new = before["models"]["baseline"], after["models"]["production"]
    same = ("test_accuracy", "confusion_matrix", "classification_report", "test_loss",
            "calibration", "one_vs_rest", "accuracy_ci", "train_accuracy",
            "val_accuracy")  # fmt: skip
    # (The calibration verdict names the model: "The production model is …".)
    for scores in (old["calibration"], new["calibration"]):
        scores["verdict"] = scores["verdict"].split(" model ", 1)[1]
    assert {k: new[k] for k in same} == {k: old[k] for k in same}
    assert new["source"]["kind"] == "checkpoint" and new["epochs"] == 0
    # The predictions file gives the same accuracy, confusion matrix, ECE and AUC.
    old, new = before["models"]["regularized"], after["models"]["candidate"]
    for key in ("test_accuracy", "confusion_matrix", "classification_report", "one_vs_rest"):
        assert new[key] == old[key], key
    for key in ("ece", "mce", "adaptive_ece", "brier", "mean_confidence", "reliability"):
        assert new["calibration"][key] == old["calibration"][key], key
    assert new["calibration"]["temperature"] is None and new["parameters"] is None
    assert new["train_accuracy"] is None and new["source"]["scores"] == "probabilities"
    # And the two together the same McNemar test and paired interval.
    for key in ("mcnemar", "difference"):
        assert after["significance"][key] == before["significance"][key], key
    old_recall, new_recall = (
        before["significance"]["class_recall"],
        after["significance"]["class_recall"],
    )
    assert new_recall["classes"] == old_recall["classes"]  # (the verdict names the models)
    # The gate: equal models are not worse by more than 0.5 pp.
    gated = after["significance"]["non_inferiority"]
    assert after["significance"]["models"] == ["production", "candidate"]
    assert gated["passed"] and gated["margin_pp"] == 0.5
    summary = (out / "summary.md").read_text()
    assert "not worse than production by more than 0.5 pp" in summary
    # No weights for a model without a network; the inputs are in the manifest.
    assert sorted(p.name for p in (out / "models").iterdir()) == ["production.pt"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(manifest["inputs"]) == ["models.candidate.predictions",
                                          "models.production.checkpoint"]  # fmt: skip
    entry = manifest["inputs"]["models.candidate.predictions"]
    assert entry["sha256"] == new["source"]["sha256"] and entry["path"].endswith("predictions.csv")
    assert "inputs" not in json.loads((quick_run / "manifest.json").read_text())


def test_compare_and_verify_refusal(
    quick_run: Path,
    evaluated: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from reportgen.cli.main import main

    out, inputs = evaluated
    assert main(["--quiet", "compare", str(quick_run), str(out), "--out", str(tmp_path / "c")]) == 0
    recorded = json.loads((out / "manifest.json").read_text())["inputs"]
    from reportgen.artifacts.manifest import InputFile

    entries = {k: InputFile.model_validate(v) for k, v in recorded.items()}
    assert input_problem(entries) is None
    target = inputs / "predictions.csv"
    original = target.read_bytes()
    try:
        target.write_bytes(original + b"\n")
        capsys.readouterr()
        assert main(["--quiet", "verify", str(out)]) == 1
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and err.startswith(
            "reportgen: not reproduced: models.candidate.predictions = "
        )
        assert "changed since the run: SHA-256 " in err
        target.unlink()
        assert "is missing (the run read it" in str(input_problem(entries))
    finally:
        target.write_bytes(original)


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["models.baseline.checkpoint=nowhere.pt"], "models.baseline.checkpoint: nowhere.pt: no "
         "such file"),
        (["models.baseline.hidden=[256,128,64]"], r"models.baseline.checkpoint: .* does not "
         r"fit the network: missing 2 key\(s\): hidden.2.0.weight, hidden.2.0.bias$"),
    ],
)  # fmt: skip
def test_cli_refuses_a_bad_checkpoint_in_one_line(
    evaluated: tuple[Path, Path],
    quick_mnist: QuickMnist,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    sets: list[str],
    message: str,
) -> None:
    from reportgen.cli.main import main

    _, inputs = evaluated
    base = [*quick_overrides(quick_mnist.root),
            f"models.baseline.checkpoint={inputs / 'baseline.pt'}",
            f"models.regularized.predictions={inputs / 'predictions.csv'}"]  # fmt: skip
    args = [a for s in (*base, *sets) for a in ("--set", s)]
    capsys.readouterr()
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(idx, "MNIST_FILES", quick_mnist.specs)
        monkeypatch.chdir(tmp_path)
        assert main(["--quiet", "run", "--out", str(tmp_path / "r"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert re.match(rf"reportgen: error: {message}", err), err
    assert not (tmp_path / "r").exists()
