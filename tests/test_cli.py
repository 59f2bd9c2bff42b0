from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from reportgen.cli.main import build_parser, main

from .conftest import fake_cli_env, quick_overrides

FAKE_CLI = Path(__file__).with_name("fake_cli.py")
REPO = Path(__file__).resolve().parents[1]


def _sets(overrides: list[str]) -> list[str]:
    return [arg for item in overrides for arg in ("--set", item)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--set", "models.Nope.dropout=0.1"], "models.Nope: a model name is"),
        (["run", "--set", "train.lr=-1"], "train.lr: Input should be greater than 0"),
        (["run", "--set", "train.epochs"], "expected KEY=VALUE"),
        (["run", "--config", "missing.toml"], "missing.toml: config file not found"),
        (["data", "--set", "run.name=../x"], "run.name: must be one safe path component"),
        (["config", "--set", 'run.name="x\\n"'], "run.name: contains the control character U+000A"),
        (["config", "--set", 'run.title="a"\nseed=5'], "the value contains a line break"),
        (["config", "--set", "train.\nepochs=3"], "the key contains a line break"),
        (["config", "--set", "x=" + "[" * 100_000], "arrays or tables nested too deeply"),
        (["config", "--set", "train.epochs=true"], "train.epochs: must be a number, not true"),
        (["config", "--set", "models.regularized.max_lr=inf"], "models.regularized.max_lr: "),
        (["run", "--set", 'data.root=""'], "data.root: must name a folder"),
        (["config", "--config", "/dev/zero"], "/dev/zero: larger than 1 MiB"),
        # Checks only the data source can make (not load_config) still stop the CLI early.
        (
            ["run", "--set", "data.val_size=60000"],
            "data.val_size (60000) must be below the 60000 training images",
        ),
        (
            ["config", "--set", "data.path=imgs"],
            'data.path: applies to data.dataset = "imagefolder" only',
        ),
        (["data", "--set", "data.dataset=imagefolder"], "data.path is required with data.dataset"),
    ],
)
def test_config_errors_exit_2_with_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("reportgen: error: ") and message in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a = " + "[" * 100_000, "deep.toml: invalid TOML: arrays or tables nested too deeply"),
        ("x = " + "{a=" * 100_000, "deep.toml: invalid TOML: arrays or tables nested too deeply"),
    ],
)
def test_deeply_nested_config_file_exits_2_with_one_line(
    text: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "deep.toml").write_text(text)
    assert main(["config", "--config", str(tmp_path / "deep.toml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "internal error" not in err


def test_config_with_byte_order_mark_validates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bom.toml").write_bytes(b"\xef\xbb\xbfseed = 3\n")
    assert main(["config", "--config", str(tmp_path / "bom.toml")]) == 0
    assert "seed = 3" in capsys.readouterr().out


def test_missing_data_root_without_download_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "missing"
    args = ["data", "--set", f'data.root="{root}"', "--set", "data.download=false"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"data.root {root} does not exist" in err
    assert "set data.download = true" in err
    assert list(tmp_path.iterdir()) == []


def test_empty_data_root_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["data", "--set", 'data.root=""', "--set", "data.download=false"]) == 2
    assert "data.root: must name a folder" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_data_command_verifies(fake_mnist: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "--set", f'data.root="{fake_mnist}"', "--set", "data.download=false"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 5 and out[-1].startswith("MNIST verified in ")


def test_data_failure_exits_1_naming_the_file(fake_mnist: Path, capsys) -> None:
    (fake_mnist / "MNIST" / "raw" / "t10k-images-idx3-ubyte").write_bytes(b"\0" * 10)
    assert main(["data", "--set", f'data.root="{fake_mnist}"', "--set", "data.download=false"]) == 1
    err = capsys.readouterr().err
    assert "t10k-images-idx3-ubyte has 10 bytes" in err and err.count("\n") == 1


def test_run_subprocess_prints_run_dir_last_and_a_line_per_epoch(tmp_path: Path) -> None:
    root = tmp_path / "data"
    out = tmp_path / "reports" / "quick"
    result = subprocess.run(
        [sys.executable, str(FAKE_CLI), "run", "--out", str(out),
         *_sets([*quick_overrides(root), "train.epochs=2", "report.render=false"])],
        env=fake_cli_env(root), capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(out)
    assert (out / "manifest.json").is_file()
    # Off a terminal, without --verbose: every stage, and every epoch of each model.
    lines = result.stderr.splitlines()
    number, duration = r"\d\.\d{4}", r"\d+(\.\d s| min \d\d s)"
    for model in ("baseline", "regularized"):
        epochs = [line for line in lines if line.startswith(f"{model}: epoch ")]
        assert len(epochs) == 2, result.stderr
        assert re.fullmatch(
            rf"{model}: epoch 1: train loss {number} acc {number} · val loss {number} "
            rf"acc {number} · lr \S+ · {duration} elapsed, ETA {duration}", epochs[0]
        ), epochs[0]  # fmt: skip
        assert re.fullmatch(rf"{model}: epoch 2: .* · {duration} elapsed, done", epochs[1])
    assert lines.index("data: done in " + lines[0].split(" in ")[1]) == 0
    assert any(line.startswith("train: done in ") for line in lines)


def test_epoch_lines_estimate_the_time_left_and_quiet_prints_none() -> None:
    import io

    from reportgen.cli.display import Display
    from reportgen.core.events import Event

    readings = iter([100.0, 112.5, 125.0, 140.0, 200.0])
    stream = io.StringIO()
    display = Display(quiet=False, verbose=False, stream=stream, clock=lambda: next(readings))
    display.event(Event("step", stage="train", model="cnn", done=0, total=50))  # starts at 100
    for epoch, message in ((1, "epoch 1: a"), (2, "epoch 2: b")):
        display.event(Event("epoch", stage="train", model="cnn", done=epoch, total=3,
                            message=message))  # fmt: skip
    display.event(Event("epoch", stage="train", model="cnn", done=3, total=3, message="c"))
    assert stream.getvalue().splitlines() == [
        "cnn: epoch 1: a · 12.5 s elapsed, ETA 25.0 s",
        "cnn: epoch 2: b · 25.0 s elapsed, ETA 12.5 s",
        "cnn: c · 40.0 s elapsed, done",
    ]
    quiet = io.StringIO()
    silent = Display(quiet=True, verbose=False, stream=quiet)
    silent.event(Event("epoch", stage="train", model="cnn", done=1, total=3, message="x"))
    silent.event(Event("stage_done", stage="train", seconds=1.0))
    assert quiet.getvalue() == ""


@pytest.mark.parametrize(
    "argv",
    [
        ["--quiet", "--debug", "run", "--set", "train.epochs=1"],
        ["run", "--quiet", "--debug", "--set", "train.epochs=1"],
        ["--debug", "run", "--set", "train.epochs=1", "-q"],
    ],
)
def test_global_options_work_before_and_after_the_command(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert (args.command, args.quiet, args.debug, args.verbose) == ("run", True, True, False)


def test_global_options_default_off_for_every_command() -> None:
    for command in (["config"], ["data"], ["verify", "x"], ["render", "x"]):
        args = build_parser().parse_args(command)
        assert (args.quiet, args.verbose, args.debug) == (False, False, False), command


def test_a_closed_pipe_ends_quietly() -> None:
    # `reportgen config | head -0`: the reader is gone before the first line is written.
    process = subprocess.Popen(
        [sys.executable, "-m", "reportgen", "config"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
    )  # fmt: skip
    assert process.stdout is not None
    process.stdout.close()
    _, err = process.communicate(timeout=120)
    assert process.returncode == 141, err
    assert err == b""


LIGHT_COMMAND = """
import sys
from reportgen.cli.main import main
status = main(sys.argv[1:])
heavy = sorted({"torch", "matplotlib", "weasyprint", "pandas", "seaborn", "ray"} & set(sys.modules))
print(status, ",".join(heavy) or "-")
"""


@pytest.mark.parametrize(
    ("args", "status"),
    [
        (["--help"], 0),
        (["config"], 0),
        (["config", "--set", "seed=-1"], 2),
        (["nope"], 2),
        (["sweep", "--help"], 0),
    ],
)
def test_help_config_and_usage_errors_load_no_heavy_library(
    args: list[str], status: int, tmp_path: Path
) -> None:
    # Run in a fresh interpreter: this one has imported everything already.
    done = subprocess.run(
        [sys.executable, "-c", LIGHT_COMMAND, *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert done.stdout.splitlines()[-1] == f"{status} -", done.stderr


@pytest.mark.parametrize(
    ("args", "line"),
    [
        # A problem is named after what set its key: the file, a --set option, a --fail-under.
        (["--set", "train.epochs=abc"], "--set 'train.epochs=abc': train.epochs: Input should be"),
        (["--set", "train.epoch=3"], "--set 'train.epoch=3': train.epoch: unknown key"),
        (["--fail-under", "baseline.acc=0.5"], "--fail-under 'baseline.acc=0.5': gate.fail_under:"),
        (
            ["--fail-under", "baseline.test_accuracy=5"],
            "--fail-under 'baseline.test_accuracy=5': gate.fail_under.baseline.test_accuracy: ",
        ),
        (["--set", "train.lr=20"], "if.toml: train.epochs: Input should be a valid integer"),
    ],
)
def test_errors_name_the_option_or_the_file_that_set_the_key(
    args: list[str], line: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "if.toml"
    config.write_text('[train]\nepochs = "many"\n' if "train.lr=20" in args else "[train]\n")
    status = main(["run", "--config", str(config), "--out", str(tmp_path / "out"), *args])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("reportgen: error: ")
    message = err.removeprefix("reportgen: error: ")
    if line.startswith("if.toml"):
        assert message.startswith(f"{config}: train.epochs: "), message
        assert "--set 'train.lr=20': train.lr: Input should be less than or equal to 10" in message
    else:
        assert message.startswith(line), message
        assert str(config) not in message
    assert not (tmp_path / "out").exists()


PLANTED = "import pathlib; pathlib.Path({marker!r}).write_text('ran')\n"


def test_python_m_does_not_import_modules_planted_in_the_current_directory(
    tmp_path: Path,
) -> None:
    # A run directory from elsewhere, opened with `python -m reportgen ... .`
    planted = tmp_path / "downloaded"
    planted.mkdir()
    for name in ("typing", "jinja2", "pydantic", "tomllib", "argparse", "difflib"):
        (planted / f"{name}.py").write_text(PLANTED.format(marker=str(tmp_path / f"ran-{name}")))
    done = subprocess.run(
        [sys.executable, "-m", "reportgen", "config", "--set", "seed=3"],
        cwd=planted, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "seed = 3" in done.stdout
    assert sorted(p.name for p in tmp_path.glob("ran-*")) == []
