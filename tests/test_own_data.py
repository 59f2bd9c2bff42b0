"""Your own data and model: an image folder and a factory network, end to end.

The factory module and the config are the documented example, taken from
docs/own-data.md ("Your own data and model", linked from the README), so the
documented example is the one that runs.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import confusion_matrix, f1_score

from reportgen.artifacts import manifest as manifest_mod
from reportgen.cli.main import main

from .conftest import NO_CHECKS
from .imagefolder_fixture import make_image_folder
from .test_imagefolder import ERRORS as FOLDER_ERRORS

REPO = Path(__file__).resolve().parents[1]
CLASSES = ("circle", "cross", "square", "triangle")


def documented_example() -> tuple[str, str]:
    """Return the documented example's ``mynets.py`` and ``shapes.toml``."""
    section = (REPO / "docs" / "own-data.md").read_text()
    assert section.startswith("# Your own data and model\n")
    module = re.search(r"`mynets\.py`:\n\n```python\n(.+?)```", section, re.DOTALL)
    config = re.search(r"`shapes\.toml`:\n\n```toml\n(.+?)```", section, re.DOTALL)
    assert module is not None and config is not None
    return module.group(1), config.group(1)


def make_project(root: Path) -> Path:
    """Write the documented example project (module, config, image folder) into ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    module, config = documented_example()
    (root / "mynets.py").write_text(module)
    (root / "shapes.toml").write_text(config)
    # RGB shapes of three sizes, resized by data.image_size.
    make_image_folder(root / "shapes", classes=CLASSES, per_class_train=40, per_class_test=15)
    return root


def run_in(project: Path, out: Path, *args: str) -> int:
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.chdir(project)
        return main(["--quiet", "run", "--config", "shapes.toml", "--out", str(out), *args])


# For a run that is not about the checks of the test set (the shared run has them all).
UNCHECKED = tuple(arg for item in NO_CHECKS for arg in ("--set", item))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("own") / "project")


@pytest.fixture(scope="module")
def own_run(project: Path) -> Path:
    out = project.parent / "run-a"
    assert run_in(project, out) == 0
    return out


def test_the_folder_and_the_factory_model_run_end_to_end(own_run: Path) -> None:
    metrics = json.loads((own_run / "metrics.json").read_text())
    dataset = metrics["dataset"]
    assert dataset["kind"] == "imagefolder" and dataset["classes"] == list(CLASSES)
    assert dataset["image_shape"] == [3, 16, 16]
    assert len(dataset["mean"]) == len(dataset["std"]) == 3
    assert dataset["fingerprint"]["method"] == "folder-sha256"
    assert dataset["test_size"] == 4 * 15 and dataset["test_support"] == [15] * 4
    # A tenth of the 160 training images is held out for validation.
    assert (dataset["train_size"], dataset["val_size"]) == (144, 16)
    for name, model in metrics["models"].items():
        assert model["test_accuracy"] > 0.5, name  # four classes: chance is 0.25
        assert len(model["confusion_matrix"]) == 4
    manifest = manifest_mod.read_manifest(own_run)
    assert manifest_mod.check_artifacts(own_run, manifest.artifacts) == []


def test_metrics_agree_with_a_recomputation_from_predictions_csv(own_run: Path) -> None:
    metrics = json.loads((own_run / "metrics.json").read_text())
    frame = pd.read_csv(own_run / "predictions.csv")
    assert list(frame.columns[:7]) == [
        "model", "index", "file", "label", "label_name", "prediction", "prediction_name",
    ]  # fmt: skip
    assert [f"p{k}" for k in range(4)] == list(frame.columns[7:])
    for name, model in metrics["models"].items():
        rows = frame[frame["model"] == name]
        y, p = rows["label"].to_numpy(), rows["prediction"].to_numpy()
        assert (rows["label_name"] == [CLASSES[k] for k in y]).all()
        assert (rows["prediction_name"] == [CLASSES[k] for k in p]).all()
        assert rows["file"].str.match(r"test/(circle|cross|square|triangle)/\d+\.png").all()
        # The class is the file's folder.
        assert (rows["file"].str.split("/").str[1] == rows["label_name"]).all()
        proba = rows[[f"p{k}" for k in range(4)]].to_numpy()
        assert (proba.argmax(axis=1) == p).all()
        assert model["test_accuracy"] == pytest.approx(float(np.mean(y == p)), abs=1e-12)
        assert model["confusion_matrix"] == confusion_matrix(y, p, labels=range(4)).tolist()
        macro = model["classification_report"]["macro_avg"]["f1"]
        assert macro == pytest.approx(f1_score(y, p, average="macro", zero_division=0), abs=1e-12)


def test_class_names_are_in_the_report(own_run: Path) -> None:
    html = (own_run / "report.html").read_text()
    assert "Shapes classifier report" in html and "Image-folder classifier evaluation" in html
    for name in CLASSES:
        assert f'<th scope="row">{name}' in html
    assert "mynets:small_convnet(width=8)" in html
    # The configured pair default is none on other data: galleries are the automatic ones.
    metrics = json.loads((own_run / "metrics.json").read_text())
    for model in metrics["models"].values():
        assert all(g["source"] == "auto" for g in model["pair_galleries"])


def test_two_runs_of_the_same_folder_are_byte_identical(project: Path, own_run: Path) -> None:
    again = project.parent / "run-b"
    assert run_in(project, again) == 0
    first = manifest_mod.read_manifest(own_run).artifacts
    second = manifest_mod.read_manifest(again).artifacts
    assert first == second


def test_renaming_one_image_changes_the_fingerprint_and_verify_says_so(
    project: Path, own_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = project.parent / "renamed"
    shutil.copytree(project, copy)
    image = copy / "shapes" / "train" / "circle" / "000.png"
    image.rename(image.with_name("000-renamed.png"))
    capsys.readouterr()
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.chdir(copy)
        # Without --allow-code, a run whose config names a factory is not re-run.
        assert main(["--quiet", "verify", str(own_run)]) == 2
        refused = capsys.readouterr().err.strip()
        assert refused.count("\n") == 0 and "--allow-code" in refused
        assert "models.regularized.factory = mynets:small_convnet" in refused
        assert main(["--quiet", "verify", str(own_run), "--allow-code"]) == 1
    err = capsys.readouterr().err
    assert "the data differ from the run's fingerprint" in err
    assert "the image folder shapes" in err


def test_a_data_fingerprint_recorded_for_each_dataset(own_run: Path) -> None:
    manifest = manifest_mod.read_manifest(own_run)
    metrics = json.loads((own_run / "metrics.json").read_text())
    assert manifest.data_files == metrics["dataset"]["fingerprint"]["sha256"]
    assert list(manifest.data_files) == ["folder"]


# --------------------------------------------------------------------------- errors


FACTORY_ERRORS = {
    "module not found": (
        "nosuchmodule:make",
        r"models\.regularized\.factory: no module named 'nosuchmodule'",
    ),
    "attribute missing": (
        "mynets:missing",
        r"models\.regularized\.factory: module 'mynets' has no attribute",
    ),
    "factory raises": (
        "badnets:raises",
        r"models\.regularized\.factory: the factory raised ValueError: width must be even",
    ),
    "not a module": (
        "badnets:not_a_module",
        r"models\.regularized\.factory: the factory returned dict, not a torch\.nn\.Module",
    ),
    "wrong output shape": (
        "badnets:wrong_shape",
        r"models\.regularized: the network's output for a batch of shape \[32, 3, 16, 16\] is "
        r"\[32, 7\]; it must be \[32, 4\]",
    ),
    "module raises on import": (
        "brokenmodule:make",
        r"importing 'brokenmodule' failed: RuntimeError: broken on import",
    ),
}
BAD_NETS = """
from torch import nn


def raises(num_classes, width=8):
    raise ValueError("width must be even")


def not_a_module():
    return {"layers": 2}


def wrong_shape(input_shape):
    return nn.Sequential(nn.Flatten(), nn.Linear(input_shape[0] * input_shape[1] ** 2, 7))


def norm_first(num_classes, input_shape):
    channels, height, width = input_shape
    return nn.Sequential(
        nn.BatchNorm2d(channels), nn.Flatten(), nn.Linear(channels * height * width, num_classes)
    )
"""


@pytest.mark.parametrize("case", sorted(FACTORY_ERRORS))
def test_factory_errors_are_one_line_before_any_training(
    case: str, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    factory, expected = FACTORY_ERRORS[case]
    (project / "badnets.py").write_text(BAD_NETS)
    (project / "brokenmodule.py").write_text("raise RuntimeError('broken on import')\n")
    out = tmp_path / "out"
    capsys.readouterr()
    status = run_in(project, out, "--set", f"models.regularized.factory={factory}",
                    "--set", "models.regularized.args={}")  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert status == 2, err
    assert err.count("\n") == 0 and err.startswith("reportgen: error: ")
    assert re.search(expected, err), err
    # Nothing was trained: no checkpoint was written into the unfinished run.
    assert not list(tmp_path.rglob("*.ckpt"))


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("models.regularized.dropout=0.2", r"dropout applies to the built-in mlp and cnn only"),
        ("models.regularized.batchnorm=true", r"batchnorm applies to the built-in mlp and cnn"),
        ("models.baseline.factory=mynets:small_convnet", r"factory applies to kind = \"python\""),
        ("models.regularized.factory=mynets", r"must be \"package\.module:callable\""),
        ("models.regularized.args.num_classes=3", r"args\.num_classes is set by reportgen"),
        ('report.confused_pairs=[["circle", "hexagon"]]', r"no class named 'hexagon'"),
        ("report.confused_pairs=[[0, 4]]", r"class 4 does not exist \(classes are 0–3\)"),
        ("report.sample_index=60", r"report\.sample_index \(60\) must be below the number of test"),
        ("data.limit_test=61", r"data\.limit_test \(61\) exceeds the 60 images"),
        ('data.path="no-such-folder"', r"data\.path"),
    ],
)
def test_bad_settings_for_own_data_are_one_line(
    override: str, expected: str, project: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    capsys.readouterr()
    assert run_in(project, tmp_path / "out", "--set", override) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and re.search(expected, err), err


def test_configured_pairs_by_name(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "named"
    overrides = ["--set", 'report.confused_pairs=[["square", "circle"], [3, 1]]',
                 "--set", "train.epochs=1", "--set", "report.pdf=false",
                 "--set", "runtime.threads=1", *UNCHECKED]  # fmt: skip
    assert run_in(project, out, *overrides) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    configured = [
        (g["true"], g["pred"])
        for g in metrics["models"]["baseline"]["pair_galleries"]
        if g["source"] == "config"
    ]
    assert configured == [(2, 0), (3, 1)]
    html = (out / "report.html").read_text()
    assert "True square, predicted circle" in html


@pytest.mark.parametrize(
    "position", range(len(FOLDER_ERRORS)), ids=[d.__name__ for d, _ in FOLDER_ERRORS]
)
def test_bad_image_folders_exit_1_with_one_line_naming_the_file(
    position: int, project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    damage, message = FOLDER_ERRORS[position]
    copy = tmp_path / "images"
    shutil.copytree(project / "shapes", copy, symlinks=True)
    damage(copy)
    capsys.readouterr()
    status = run_in(project, tmp_path / "out", "--set", f"data.path={json.dumps(str(copy))}")
    err = capsys.readouterr().err.strip()
    assert status == 1, err
    assert err.count("\n") == 0, err
    assert re.search(message.replace("^", "reportgen: error: ", 1), err), err
    assert not (tmp_path / "out").exists()


def test_a_folder_over_the_memory_budget_is_refused_before_decoding(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    # 220 RGB images of 256×256 need about 41 MiB decoded, over a 16 MiB budget.
    status = run_in(project, tmp_path / "out", "--set", "data.image_size=256",
                    "--set", "data.memory_mb=16")  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert status == 1 and err.count("\n") == 0, err
    assert "its images need 41.3 MiB (43,255,520 bytes) as uint8 3×256×256 tensors" in err
    assert "over the memory budget of 16.0 MiB (16,777,216 bytes) (data.memory_mb)" in err


def test_an_image_too_large_to_decode_in_the_budget_is_refused_from_its_header(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    copy = tmp_path / "images"
    shutil.copytree(project / "shapes", copy)
    # A 3000×3000 black RGB image is a few KB of PNG, but decoding it needs
    # 9,000,000 pixels × (4 bytes as PIL holds RGB + 4 converted) = 68.7 MiB.
    Image.new("RGB", (3000, 3000)).save(copy / "train" / "circle" / "huge.png")
    decoded = tmp_path / "decoded"

    def spy(*args: object, **kwargs: object) -> object:
        decoded.touch()
        raise AssertionError("decoded an image")

    capsys.readouterr()
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr("reportgen.data.imagefolder.decode_image", spy)
        status = run_in(project, tmp_path / "out", "--set", f"data.path={json.dumps(str(copy))}",
                        "--set", "data.memory_mb=64")  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert status == 1 and err.count("\n") == 0, err
    assert err.startswith(
        "reportgen: error: train/circle/huge.png: its header says 3000×3000 pixels (RGB), which "
        "need 68.7 MiB (72,000,000 bytes) to decode besides the "
    ), err
    assert "over the memory budget of 64.0 MiB (67,108,864 bytes) (data.memory_mb)" in err
    assert not decoded.exists() and not (tmp_path / "out").exists()


def test_a_small_memory_budget_evaluates_in_small_batches_with_the_same_results(
    project: Path, tmp_path: Path
) -> None:
    # At 64 px the small convnet's activations are about 0.5 MiB an image: a 16 MiB budget
    # evaluates 13 at a time, a 64 GiB one train.eval_batch_size (512) at a time.
    common = ("--set", "data.image_size=64", "--set", "train.epochs=1", "--set",
              "report.render=false", "--set", "report.attributions=false", *UNCHECKED)  # fmt: skip
    small, large = tmp_path / "small", tmp_path / "large"
    assert run_in(project, small, *common, "--set", "data.memory_mb=16") == 0
    assert run_in(project, large, *common, "--set", "data.memory_mb=65536") == 0
    small_log = (small / "run.log").read_text()
    assert "[data] regularized: evaluates 13 images at a time, fewer than train.eval_batch_size " \
        "(512), to stay within the memory budget (data.memory_mb)\n" in small_log  # fmt: skip
    assert "evaluates" not in (large / "run.log").read_text()
    small_models = json.loads((small / "metrics.json").read_text())["models"]
    large_models = json.loads((large / "metrics.json").read_text())["models"]
    for name in ("baseline", "regularized"):
        for key in ("test_accuracy", "train_accuracy", "val_accuracy", "confusion_matrix"):
            assert small_models[name][key] == large_models[name][key], (name, key)
        assert small_models[name]["test_loss"] == pytest.approx(large_models[name]["test_loss"])
    small_predictions = pd.read_csv(small / "predictions.csv")
    large_predictions = pd.read_csv(large / "predictions.csv")
    assert small_predictions["prediction"].tolist() == large_predictions["prediction"].tolist()
    probabilities = [f"p{k}" for k in range(len(CLASSES))]
    assert np.allclose(small_predictions[probabilities], large_predictions[probabilities],
                       rtol=0, atol=2e-6)  # fmt: skip


def test_a_network_whose_one_image_does_not_fit_the_budget_is_refused_before_training(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    # 220 RGB images of 150×150 are 14.2 MiB of a 16 MiB budget; one image in the
    # small convnet needs 2.7 MiB of activations, over half of what is left.
    status = run_in(project, tmp_path / "out", "--set", "data.image_size=150",
                    "--set", "data.memory_mb=16")  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert status == 1 and err.count("\n") == 0, err
    assert err == (
        "reportgen: error: models.regularized: one image's activations need 2.7 MiB to "
        "evaluate, over the 0.9 MiB an evaluation batch may take (half of what the 14.2 MiB "
        "of data leave of the memory budget of 16.0 MiB, data.memory_mb); raise "
        "data.memory_mb or set a smaller data.image_size"
    )
    assert not (tmp_path / "out").exists()


def test_paths_in_a_config_are_relative_to_its_folder_and_set_to_the_working_directory(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "from-parent"
    quick = ["--set", "train.epochs=1", "--set", "report.render=false",
             "--set", "runtime.threads=1", *UNCHECKED]  # fmt: skip
    config = f"{project.name}/shapes.toml"
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.chdir(project.parent)  # shapes.toml says path = "shapes"
        assert main(["--quiet", "run", "--config", config, "--out", str(out), *quick]) == 0
        # The recorded config names the folder as found from where the run was made.
        assert f'path = "{project.name}/shapes"' in (out / "config.toml").read_text()
        capsys.readouterr()
        # --set is relative to the working directory, where there is no "shapes".
        status = main(["--quiet", "run", "--config", config, "--out", str(tmp_path / "set"),
                       "--set", 'data.path="shapes"', *quick])  # fmt: skip
        err = capsys.readouterr().err.strip()
        assert status == 2 and err == (
            "reportgen: error: data.path shapes does not exist: give a folder holding train/ "
            "and test/"
        ), err
        # verify from elsewhere says what to pass, before anything is trained.
        monkeypatch.chdir(tmp_path)
        assert main(["--quiet", "verify", str(out), "--allow-code"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"reportgen: error: {out}: its image folder, "
                                                   f"data.path = '{project.name}/shapes', is "
                                                   "relative to the directory the run was made "
                                                   "from and is not found from "), err  # fmt: skip
    assert err.endswith("pass --data-path DIR (the image folder), or verify from that directory")
    assert not (tmp_path / "set").exists()


def test_a_figure_that_cannot_apply_is_one_sentence(project: Path, tmp_path: Path) -> None:
    (project / "badnets.py").write_text(BAD_NETS)
    out = tmp_path / "norm-first"
    overrides = ["--set", "models.regularized.factory=badnets:norm_first",
                 "--set", "models.regularized.args={}", "--set", "train.epochs=1",
                 "--set", "report.pdf=false", "--set", "runtime.threads=1", *UNCHECKED]  # fmt: skip
    assert run_in(project, out, *overrides) == 0
    model = json.loads((out / "metrics.json").read_text())["models"]["regularized"]
    note = model["figure_notes"]["weights"]
    assert note == (
        "The weights figure does not apply to the regularized model: its first layer with "
        "parameters, 0 (BatchNorm2d), is neither a linear layer over the image's pixels nor a "
        "convolution over its channels."
    )
    # The activations figure shows the output of that first layer: maps of the image's shape.
    assert model["figure_layers"] == {"activations": "0"}
    html = (out / "report.html").read_text()
    assert note.replace("'", "&#39;") in html
    assert "the output it produces in module 0 of the regularized model" in html


def test_report_layer_picks_the_module_the_activations_show(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "layer"
    overrides = ["--set", "report.layer={regularized=\"2\", baseline=\"hidden.0.1\"}",
                 "--set", "train.epochs=1", "--set", "report.render=false",
                 "--set", "runtime.threads=1", *UNCHECKED]  # fmt: skip
    assert run_in(project, out, *overrides) == 0
    models = json.loads((out / "metrics.json").read_text())["models"]
    # The factory's module 2 is its first max-pooling; the MLP's hidden.0.1 its first ReLU.
    assert models["regularized"]["figure_layers"] == {"weights": "0", "activations": "2"}
    assert models["baseline"]["figure_layers"] == {"activations": "hidden.0.1"}
