"""Tests for reading SWEEP.toml: one clear line per mistake, points named by what they are."""

from __future__ import annotations

from pathlib import Path

import pytest

from reportgen.cli.main import main
from reportgen.config.sweepspec import load_sweep, safe_label
from reportgen.core.errors import ConfigError
from reportgen.sweep.plan import plan_runs, run_key

REPO = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sweep.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("seeds = [0]\nseed = [1]\n", r"seed: unknown key .*did you mean 'seeds'\?"),
        ("seeds = []\n", r"seeds: must be a non-empty array"),
        ("seeds = [0, 0]\n", r"seeds: 0 listed twice"),
        ("seeds = [true]\n", r"seeds: True is not an integer"),
        ("seeds = [0]\n[grid]\n", r"empty grid"),
        ('seeds = [0]\n[grid]\n"train.lr" = []\n', r"'train.lr' must be a non-empty array"),
        ('seeds = [0]\n[grid]\n"train.lr" = 0.1\n', r"'train.lr' must be a non-empty array"),
        ('seeds = [0]\n[grid]\n"train.lr" = [0.1, 0.1]\n', r"'train.lr' lists 0.1 twice"),
        (
            'seeds = [0]\n[grid]\n"models.regularized.dropuot" = [0.1]\n',
            r"'models.regularized.dropuot' is not a config key; "
            r"did you mean 'models.regularized.dropout'\?",
        ),
        ('seeds = [0]\n[grid]\n"seed" = [1, 2]\n', r"'seed' cannot be swept"),
        (
            'seeds = [0]\n[grid]\n"train.epochs" = [1, "two"]\n',
            r"point 2: train.epochs: Input should be a valid integer",
        ),
        (
            'seeds = [0]\n[grid]\n"models.regularized.dropout" = [0.1, 1.5]\n',
            r"point 2: models.regularized.dropout: Input should be less than 1",
        ),
        (
            'seeds = [0]\n[[points]]\n"train.lr" = 0.1\n[[points]]\ntrain.lr = 0.1\n',
            r"point 2: the same overrides as point 1",
        ),
        (
            'seeds = [0]\n[[points]]\nlabel = "a"\n[[points]]\nlabel = "a"\n"train.lr" = 0.1\n',
            r"label 'a' is used by point 1 too",
        ),
        ("seeds = [0]\npoints = []\n", r"points: must be a non-empty array of tables"),
        ('seeds = [0]\n[grid]\n"train.lr" = [0.1]\n[[points]]\n', r"either \[grid\] or"),
        ('seeds = [0]\n[overrides]\n"train.epoch" = 1\n', r"did you mean 'train.epochs'\?"),
        ('seeds = [0]\nconfig = "missing.toml"\n', r"missing.toml: config file not found"),
        ('seeds = [0]\ntitle = "a\\u202eb"\n', r"title: contains the bidirectional .* U\+202E "),
        (
            'seeds = [0]\n[[points]]\nlabel = "x\\u0000"\n"train.lr" = 0.1\n',
            r"points\[0\]\.label: contains the control character U\+0000;",
        ),
        (
            'seeds = [0]\n[grid]\n"run.title" = ["a", "b\\u2068"]\n',
            r"point 2: run\.title: contains the bidirectional .* U\+2068 ",
        ),
        (
            'seeds = [0]\nrun_reports = "pdf"\n',
            r'run_reports: must be one of "none", "html", "full", got \'pdf\'',
        ),
        (
            'seeds = [0]\n[grid]\n"report.render" = [true, false]\n',
            r"'report.render' is set for every run by the sweep's run_reports",
        ),
    ],
)
def test_invalid_sweep_files_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=message):
        load_sweep(path)
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("reportgen: error: ")
    assert not (tmp_path / "out").exists()


def test_too_many_runs_need_yes(tmp_path: Path) -> None:
    path = _write(tmp_path, 'seeds = [0, 1, 2, 3]\n[grid]\n"train.lr" = ' + str(
        [round(0.001 * (i + 1), 4) for i in range(51)]) + "\n")  # fmt: skip
    with pytest.raises(ConfigError, match=r"204 runs \(51 points × 4 seeds\) are more than 200; "
                       "pass --yes"):  # fmt: skip
        load_sweep(path)
    assert load_sweep(path, yes=True).run_count == 204


def test_grid_is_the_cartesian_product_named_by_what_each_point_is(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        'seeds = [3, 1]\n[grid]\n"models.regularized.dropout" = [0.1, 0.5]\n'
        'train.optimizer = ["adam", "sgd"]\n"models.baseline.dropout" = [0.0]\n',
    )
    spec = load_sweep(path)
    labels = [p.label for p in spec.points]
    assert labels == [
        "regularized.dropout=0.1,train.optimizer=adam,baseline.dropout=0.0",
        "regularized.dropout=0.1,train.optimizer=sgd,baseline.dropout=0.0",
        "regularized.dropout=0.5,train.optimizer=adam,baseline.dropout=0.0",
        "regularized.dropout=0.5,train.optimizer=sgd,baseline.dropout=0.0",
    ]
    assert spec.keys == ("models.regularized.dropout", "train.optimizer", "models.baseline.dropout")
    assert spec.points[3].config.models["regularized"].dropout == 0.5
    assert spec.points[3].config.train.optimizer == "sgd"
    runs = plan_runs(spec, "2024-05-06")
    assert [r.key for r in runs[:2]] == [
        "points/regularized.dropout=0.1,train.optimizer=adam,baseline.dropout=0.0/seed-3",
        "points/regularized.dropout=0.1,train.optimizer=adam,baseline.dropout=0.0/seed-1",
    ]
    assert [r.config.seed for r in runs[:2]] == [3, 1]
    assert {r.config.run.date for r in runs} == {"2024-05-06"}


def test_points_labels_are_sanitised_and_base_is_applied(tmp_path: Path) -> None:
    (tmp_path / "base.toml").write_text("[train]\nepochs = 4\n", encoding="utf-8")
    path = _write(
        tmp_path,
        'config = "base.toml"\nseeds = [0]\n[overrides]\n"train.lr" = 0.01\n'
        '[[points]]\nlabel = "../../etc é"\n"train.optimizer" = "sgd"\n'
        "[[points]]\nmodels.baseline.hidden = [64, 32]\n"
        "[[points]]\n",
    )
    spec = load_sweep(path)
    assert [p.label for p in spec.points] == ["_.._.._etc__", "hidden=_64,32_", "base"]
    assert all(p.config.train.epochs == 4 and p.config.train.lr == 0.01 for p in spec.points)
    assert spec.points[1].config.models["baseline"].hidden == (64, 32)
    assert run_key("base", 7) == "points/base/seed-7"


@pytest.mark.parametrize("text", ["", "..", ".hidden", "a/b", "x" * 300])
def test_safe_label_is_one_path_component(text: str) -> None:
    label = safe_label(text)
    assert label and "/" not in label and not label.startswith(".") and len(label) <= 100


def test_example_sweep_file_is_valid() -> None:
    spec = load_sweep(REPO / "sweep.toml")
    assert spec.kind == "grid" and len(spec.seeds) == 5
    assert spec.run_count == len(spec.points) * 5


@pytest.mark.parametrize(
    ("seeds", "given", "expected", "render", "pdf"),
    [(5, None, "full", True, True), (6, None, "none", False, True),
     (6, "full", "full", True, True), (2, "none", "none", False, True),
     (2, "html", "html", True, False)],
)  # fmt: skip
def test_run_reports_default_to_the_size_of_the_sweep_and_set_each_run_config(
    tmp_path: Path, seeds: int, given: str | None, expected: str, render: bool, pdf: bool
) -> None:
    line = f'run_reports = "{given}"\n' if given else ""
    spec = load_sweep(_write(tmp_path, f"seeds = {list(range(seeds))}\n{line}"))
    assert spec.run_reports == expected
    report = spec.points[0].config.report
    assert (report.render, report.pdf) == (render, pdf)
    # The point's config.toml carries it, so a plain run of it writes the same files
    # (true, the default, is left out: config.toml of a plain run is as it always was).
    assert ("render = false" in plan_runs(spec, "2024-01-01")[0].toml) is not render
