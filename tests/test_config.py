from __future__ import annotations

import datetime as dt
import re
import tomllib
from pathlib import Path

import pytest

from reportgen.config.dates import run_day, with_date
from reportgen.config.loading import (
    MAX_CONFIG_BYTES,
    apply_overrides,
    load_config,
    parse_override,
    parse_toml,
    read_config_text,
    validate,
)
from reportgen.config.schema import Config
from reportgen.config.toml import to_toml
from reportgen.core.errors import ConfigError
from reportgen.data.sources import check_config

REPO = Path(__file__).resolve().parents[1]


def test_default_config_file_matches_builtin_defaults() -> None:
    from_file = load_config(REPO / "config.toml")
    builtin = load_config(None)
    assert from_file.model_dump(exclude={"data": {"root"}}) == builtin.model_dump(
        exclude={"data": {"root"}}
    )


def test_defaults_follow_spec() -> None:
    config = Config()
    assert (config.data.batch_size, config.train.optimizer, config.train.lr) == (64, "adam", 1e-3)
    assert config.train.epochs == 10
    base, reg = config.models["baseline"], config.models["regularized"]
    assert base.hidden == reg.hidden == (256, 128)
    assert (base.dropout, base.batchnorm, base.weight_decay, base.scheduler) == (
        0,
        False,
        0,
        "none",
    )
    assert (reg.dropout, reg.batchnorm, reg.weight_decay) == (0.3, True, 1e-4)
    assert (reg.scheduler, reg.step_size, reg.gamma) == ("step", 5, 0.5)
    assert config.report.confused_pairs is None  # [[4, 9]] on MNIST, none elsewhere


def test_config_is_frozen() -> None:
    config = Config()
    with pytest.raises(Exception, match="frozen"):
        config.train.lr = 0.1  # type: ignore[misc]


def test_data_root_defaults_to_xdg_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert Config().data.root == str(tmp_path / "reportgen")


@pytest.mark.parametrize(
    ("override", "value"),
    [
        ("train.epochs=2", 2),
        ("train.lr=0.01", 0.01),
        ("train.optimizer=sgd", "sgd"),
        ('train.optimizer="adamw"', "adamw"),
        ("report.confused_pairs=[[3, 8], [5, 3]]", [[3, 8], [5, 3]]),
        ("models.regularized.batchnorm=false", False),
    ],
)
def test_parse_override_values_as_toml(override: str, value: object) -> None:
    assert parse_override(override)[1] == value


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (
            ["models.nope.dropout=0.1"],
            r"models: at most two models \(one paired comparison\), got 3: baseline, "
            r"regularized, nope$",
        ),
        (["train.lr=-1"], r"train\.lr: Input should be greater than 0"),
        (["train.epochs=0"], r"train\.epochs: Input should be greater than or equal to 1"),
        (
            ["report.attribution_steps=2"],
            r"report\.attribution_steps: Input should be greater than or equal to 4",
        ),
        (["report.attributions=maybe"], r"report\.attributions: Input should be a valid boolean"),
        (
            ["report.table_rows=0"],
            r"report\.table_rows: Input should be greater than or equal to 1 \(got 0\)",
        ),
        (["report.table_rows=many"], r"report\.table_rows: Input should be a valid integer"),
        (["data.batch_size=0"], r"data\.batch_size"),
        (
            ["models.regularized.dropout=1"],
            r"models\.regularized\.dropout: Input should be less than 1",
        ),
        (
            ["train.optimizer=rmsprop"],
            r"train\.optimizer: Input should be 'sgd', 'adam' or 'adamw'",
        ),
        (
            ["models.baseline.scheduler=linear"],
            r"models\.baseline\.scheduler: Input should be 'none'",
        ),
        (["train.epoch=3"], r"train\.epoch: unknown key .*did you mean 'train\.epochs'\?"),
        (["train.epochs='ten'"], r"train\.epochs: Input should be a valid integer"),
        (
            ["report.confused_pairs=[[4, -1]]"],
            r"report\.confused_pairs\.0\.1: a class index must be 0",
        ),
        (
            ["report.confused_pairs=[[4, 1.5]]"],
            r"report\.confused_pairs\.0\.1: must be a class index",
        ),
        (["report.confused_pairs=[[4, 4]]"], r"not a confusion"),
        (["run.name=.."], r"run\.name: must be one safe path component"),
        (["run.name=a/b"], r"run\.name"),
        (['run.name=""'], r"run\.name"),
        (['run.name="a\\nb"'], r"run\.name"),
        (['run.name="abc\\n"'], r"run\.name: contains the control character U\+000A"),
        (['run.date="2024-01-31\\n"'], r"run\.date: contains the control character U\+000A"),
        (['data.root=""'], r"data\.root: must name a folder"),
        (['data.root="  "'], r"data\.root: must name a folder"),
        (["train.epochs=true"], r"train\.epochs: must be a number, not true or false"),
        (["models.regularized.max_lr=inf"], r"models\.regularized\.max_lr: .*finite"),
        (["models.baseline.min_lr=nan"], r"models\.baseline\.min_lr: .*finite"),
        (["models.baseline.min_lr=1e400"], r"models\.baseline\.min_lr: .*finite"),
        (["models.baseline.hidden=[true]"], r"models\.baseline\.hidden\.0: must be a number"),
        (["report.confused_pairs=[[false, 3]]"], r"report\.confused_pairs\.0\.0: must be a class"),
        (['gate.fail_under={"baseline.test_accuracy" = nan}'], r"gate\.fail_under\..*finite"),
        (['gate.fail_under={"baseline.test_accuracy" = true}'], r"gate\.fail_under\..*a number"),
        (["train.lr=1", "train.lr.x=1"], r"train\.lr is a value, not a table"),
    ],
)
def test_bad_values_name_the_key(overrides: list[str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_config(None, overrides)


@pytest.mark.parametrize("item", ["train.epochs", "=3", "train..lr=1"])
def test_malformed_override(item: str) -> None:
    with pytest.raises(ConfigError, match="--set"):
        parse_override(item)


def test_toml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("seed = 1\n[train\nepochs = 2\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: invalid TOML: .*line 2, column"):
        load_config(path)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_overrides_do_not_mutate_input() -> None:
    data = {"train": {"epochs": 3}}
    assert apply_overrides(data, ["train.epochs=4"]) == {"train": {"epochs": 4}}
    assert data == {"train": {"epochs": 3}}


def test_resolved_toml_round_trips() -> None:
    config = load_config(None, ['run.title="a \\"quoted\\" <b>title</b>"', "seed=7"])
    text = to_toml(config)
    assert validate(parse_toml(text, source="resolved")) == config
    assert "[models.regularized]" in text and 'scheduler = "step"' in text


def _defaults_of_type(kind: type) -> list[str]:
    """Return every key whose default is a ``kind`` (booleans are not numbers here)."""

    def walk(table: dict[str, object], prefix: str) -> list[str]:
        keys = []
        for key, value in table.items():
            if isinstance(value, dict):
                keys += walk(value, f"{prefix}{key}.")
            elif isinstance(value, kind) and not isinstance(value, bool):
                keys.append(f"{prefix}{key}")
        return keys

    return walk(parse_toml(to_toml(Config()), source="defaults"), "")


@pytest.mark.parametrize("key", _defaults_of_type(int | float))
@pytest.mark.parametrize("value", ["true", "false"])
def test_booleans_are_not_numbers(key: str, value: str) -> None:
    with pytest.raises(
        ConfigError, match=rf"{re.escape(key)}: must be a number, not true or false"
    ):
        load_config(None, [f"{key}={value}"])


@pytest.mark.parametrize("key", _defaults_of_type(float))
@pytest.mark.parametrize("value", ["inf", "-inf", "nan"])
def test_floats_must_be_finite(key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=rf"{re.escape(key)}: Input should be a finite number"):
        load_config(None, [f"{key}={value}"])


@pytest.mark.parametrize(("override", "value"), [('train.epochs="2"', 2), ("train.epochs=2.0", 2)])
def test_numbers_keep_their_lax_reading(override: str, value: int) -> None:
    assert load_config(None, [override]).train.epochs == value


@pytest.mark.parametrize(
    ("item", "match"),
    [
        ('run.title="a"\nseed=5', r"the value contains a line break \(U\+000A\)"),
        ("train.epochs=3\r", r"the value contains a line break \(U\+000D\)"),
        ("run.title=a\x0bb", r"the value contains a line break \(U\+000B\)"),
        ("run.title=a\u2028b", r"the value contains a line break \(U\+2028\)"),
        ("run.title=a\x00b", r"the value contains the control character U\+0000"),
        ("run.title=a\udcffb", r"the value contains bytes that are not UTF-8"),
        ("train.\nepochs=3", r"the key contains a line break \(U\+000A\)"),
        ("x=" + "[" * 100_000, r"arrays or tables nested too deeply"),
        ("x=" + "{a=" * 100_000, r"arrays or tables nested too deeply"),
    ],
)
def test_unsafe_override_is_refused_naming_the_item(item: str, match: str) -> None:
    with pytest.raises(ConfigError, match=r"^--set '.*'[^:]*: " + match) as caught:
        parse_override(item)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 300


def test_tab_in_an_override_is_kept() -> None:
    assert parse_override("run.title=a\tb") == (["run", "title"], "a\tb")


@pytest.mark.parametrize(
    "text", ["a = " + "[" * 100_000, "x = " + "{a=" * 100_000 + "1" + "}" * 100_000]
)
def test_deeply_nested_file_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "deep.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"deep\.toml: invalid TOML: .*nested too deeply"):
        load_config(path)


def test_config_file_over_the_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.toml"
    path.write_text("#" * MAX_CONFIG_BYTES + "\n")
    with pytest.raises(ConfigError, match=r"big\.toml: larger than 1 MiB"):
        load_config(path)


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_endless_config_file_reads_no_more_than_the_limit(device: str) -> None:
    with pytest.raises(ConfigError, match=rf"{device}: larger than 1 MiB"):
        read_config_text(device)


def test_config_file_with_byte_order_mark_validates(tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbfseed = 3\n[train]\nepochs = 2\n")
    config = load_config(path)
    assert (config.seed, config.train.epochs) == (3, 2)


def test_config_file_that_is_not_utf8_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'seed = 1\n[run]\ntitle = "caf\xe9"\n')
    with pytest.raises(ConfigError, match=r"latin1\.toml: not UTF-8 text: byte 0xe9 on line 3"):
        load_config(path)


def test_config_path_that_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read config file: Is a directory"):
        load_config(tmp_path)


# --------------------------------------------------------------------------- the run's date

NOON = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("configured", "environ", "expected"),
    [
        (None, {}, "2026-11-30"),  # the day of the run, UTC
        (None, {"SOURCE_DATE_EPOCH": "86400"}, "1970-01-02"),  # the environment overrides it
        (None, {"SOURCE_DATE_EPOCH": ""}, "2026-11-30"),
        ('"2024-03-01"', {"SOURCE_DATE_EPOCH": "86400"}, "2024-03-01"),  # the config wins
    ],
)
def test_a_run_is_dated(configured: str | None, environ: dict[str, str], expected: str) -> None:
    config = load_config(None, [] if configured is None else [f"run.date={configured}"])
    dated = with_date(config, environ=environ, now=NOON)
    assert dated.run.date == expected
    assert f'date = "{expected}"' in to_toml(dated)
    assert with_date(config, "2020-02-02", environ=environ).run.date == (
        expected if configured else "2020-02-02"
    )


def test_the_day_is_taken_in_utc() -> None:
    late = dt.datetime(2026, 11, 30, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert run_day({}, late) == "2026-12-01"


@pytest.mark.parametrize("raw", ["yesterday", "1e9", "99999999999999999999"])
def test_bad_source_date_epoch_is_one_line(raw: str) -> None:
    with pytest.raises(ConfigError, match="SOURCE_DATE_EPOCH must be a whole number"):
        with_date(Config(), environ={"SOURCE_DATE_EPOCH": raw}, now=NOON)


def test_impossible_dates_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"run\.date: must be an ISO date"):
        load_config(None, ['run.date="2024-02-30"'])


# --------------------------------------------------------------------------- data and models


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["data.dataset=cifar"], r"data\.dataset: Input should be 'mnist', 'fashion-mnist' or"),
        (["data.dataset=imagefolder", "data.path=x", "data.channels=2"],
         r"data\.channels: must be 1 \(grey\) or 3 \(RGB\) \(got 2\)"),
        (["data.dataset=imagefolder", "data.path=x", "data.image_size=2"],
         r"data\.image_size: Input should be greater than or equal to 4"),
        (["data.dataset=imagefolder", "data.path=' '"], r"data\.path: must name the image folder"),
        (["models.baseline.kind=python"], r"kind = \"python\" needs factory"),
        (["models.baseline.kind=python", "models.baseline.factory=m:f",
          "models.baseline.hidden=[8]"], r"hidden applies to the built-in mlp and cnn only"),
        (["models.baseline.kind=python", "models.baseline.factory=m:f",
          "models.baseline.args={x=[{a=1}]}"], r"args\.x: arrays of tables are not supported"),
        (["models.baseline.args={width=8}"], r"args applies to kind = \"python\" only"),
        (["report.layer=''", "report.confused_pairs=[['', 1]]"], r"must be a class index"),
    ],
)  # fmt: skip
def test_data_and_model_settings_name_the_key(overrides: list[str], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_config(None, overrides)


# Settings that only the data source can judge: the schema (load_config) accepts them, and
# check_config, which the CLI, the pipeline and the sweep call before any work, refuses them.
@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["data.val_size=60000"], r"data\.val_size \(60000\) must be below the 60000 training"),
        (["data.val_size=10000", "data.limit_train=55000"], r"data\.limit_train \(55000\) exceeds"),
        (["data.limit_test=10001"], r"data\.limit_test \(10001\) exceeds the 10000 test images"),
        (["report.sample_index=150", "data.limit_test=100"], r"report\.sample_index \(150\)"),
        (["data.dataset=fashion-mnist", "data.val_size=60000"],
         r"data\.val_size \(60000\) must be below the 60000 training"),
        (["data.dataset=imagefolder"], r"data\.path is required with data\.dataset"),
        (["data.path=imgs"], r"data\.path: applies to data\.dataset = \"imagefolder\" only"),
        (["data.image_size=32"], r"data\.image_size: applies to data\.dataset = \"imagefolder\""),
        (["data.memory_mb=64"], r"data\.memory_mb: applies to data\.dataset = \"imagefolder\""),
    ],
)  # fmt: skip
def test_data_source_checks_name_the_key(overrides: list[str], expected: str) -> None:
    config = load_config(None, overrides)
    with pytest.raises(ConfigError, match=expected) as caught:
        check_config(config)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["data.val_size=59999"],
        ["data.val_size=10000", "data.limit_train=50000"],
        ["report.sample_index=99", "data.limit_test=100"],
        ["data.dataset=imagefolder", "data.path=imgs", "data.image_size=32"],
    ],
)
def test_data_source_checks_accept_what_the_data_can_satisfy(overrides: list[str]) -> None:
    config = load_config(None, overrides)
    assert check_config(config) is config


def test_one_regularized_key_keeps_the_other_regularized_defaults() -> None:
    # Setting one key of [models.regularized] must not turn it into a plain model.
    config = load_config(None, ["models.regularized.hidden=[64]"])
    reg = config.models["regularized"]
    assert reg.hidden == (64,)
    assert (reg.dropout, reg.batchnorm, reg.weight_decay, reg.scheduler) == (
        0.3,
        True,
        1e-4,
        "step",
    )
    # A python regularized model keeps the optimiser and schedule defaults, and no dropout.
    config = load_config(None, ["models.regularized.kind=python", "models.regularized.factory=m:f"])
    reg = config.models["regularized"]
    assert (reg.weight_decay, reg.scheduler, reg.dropout, reg.batchnorm) == (
        1e-4,
        "step",
        0.0,
        False,
    )


def test_a_python_model_round_trips_through_the_resolved_config() -> None:
    config = load_config(None, [
        "models.baseline.kind=python", "models.baseline.factory=nets.deep:make",
        "models.baseline.args={width=8, names=['a', 'b'], inner={depth=2}}",
        "data.dataset=imagefolder", "data.path=imgs", "data.image_size=32", "data.channels=1",
    ])  # fmt: skip
    text = to_toml(config)
    assert "hidden" not in text.split("[models.baseline]")[1].split("[models.regularized]")[0]
    assert 'factory = "nets.deep:make"' in text and "[models.baseline.args]" in text
    again = validate(tomllib.loads(text))
    assert again == config
    assert again.models["baseline"].args == {"width": 8, "names": ["a", "b"], "inner": {"depth": 2}}


# --------------------------------------------------------------------------- text in the report


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (r'run.title="a\u0000b\u202eevil"', r"run\.title: contains the control character U\+0000;"),
        (r'run.title="ab\u202eevil"', r"run\.title: contains the bidirectional formatting "
         r"character U\+202E \(right-to-left override\);"),
        (r'run.author="a\u2067b"', r"run\.author: contains the bidirectional .* U\+2067 "),
        (r'run.author="a\u200fb"', r"run\.author: contains the bidirectional .* U\+200F "),
        (r'run.title="a\tb"', r"run\.title: contains the control character U\+0009;"),
        (r'run.title="a\u0085b"', r"run\.title: contains the control character U\+0085;"),
        (r'run.title="a\u2029b"', r"run\.title: contains the line break U\+2029 "),
        (r'data.path="imgs\u202e"', r"data\.path: contains the bidirectional .* U\+202E "),
        (r'report.layer={baseline="fc\u2066"}', r"report\.layer\.baseline: contains .* U\+2066 "),
        (r'report.confused_pairs=[["a\u202d", "b"]]', r"report\.confused_pairs: .*U\+202D"),
        (r'models.baseline.args={"k\u202e"=1}', r"models\.baseline\.args: a key .*U\+202E"),
        (r'models.baseline.args={k=["x\u0007"]}', r"models\.baseline\.args\.k: contains .*U\+0007"),
    ],
)  # fmt: skip
def test_control_and_bidi_characters_are_refused_naming_the_key(
    override: str, message: str
) -> None:
    overrides = [override]
    if "args" in override:
        overrides += ["models.baseline.kind=python", "models.baseline.factory=m:f"]
    # Named after the option that set it, as every other problem of a --set item is.
    with pytest.raises(ConfigError, match=r"^--set '.+': " + message) as caught:
        load_config(None, overrides)
    assert str(caught.value).startswith(f"--set {override!r}: ")
    assert "\n" not in str(caught.value)
    assert not any(char in str(caught.value) for char in "\x00\u202e\u2066\u202d\x07\u200f")


def test_a_hidden_character_in_a_config_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text('[run]\ntitle = "a\\u202eb"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^.+run\.toml: run\.title: contains the bidirectional"):
        load_config(path, ["seed=1"])


def test_text_a_report_may_show_is_kept() -> None:
    title = "Ré\u0301sumé 数字 \u05e9\u05dc\u05d5\u05dd \U0001f468\u200d\U0001f469 a\u00a0b"
    assert load_config(None, [f'run.title="{title}"']).run.title == title


def test_a_config_built_in_python_is_checked_too() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"run\.title: contains .*U\+202E"):
        Config.model_validate({"run": {"title": "a\u202eb"}})


def test_the_command_line_refuses_before_any_work(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "reportgen", "run", "--set", r'run.title="a\u0000b\u202eevil"',
         "--out", str(out)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        "reportgen: error: --set 'run.title=\"a\\\\u0000b\\\\u202eevil\"': run.title: contains the "
        "control character U+0000; remove it\n"
    )
    assert list(tmp_path.iterdir()) == []  # no output, no partial directory, no data


@pytest.mark.parametrize(
    ("top_k", "classes", "expected"),
    [(None, 10, None), (None, 19, None), (None, 20, 5), (None, 300, 5), (0, 300, None),
     (3, 10, 3), (10, 300, 10)],
)  # fmt: skip
def test_top_k_is_5_from_20_classes_unless_set(
    top_k: int | None, classes: int, expected: int | None
) -> None:
    from reportgen.data import sources

    overrides = [] if top_k is None else [f"report.top_k={top_k}"]
    assert sources.top_k(load_config(None, overrides), classes) == expected


def test_top_k_must_be_below_the_classes_and_not_one() -> None:
    from reportgen.data import sources

    with pytest.raises(ConfigError, match=r"report\.top_k \(10\) must be below the number of "
                       r"classes \(10\), or 0 for none"):  # fmt: skip
        sources.top_k(load_config(None, ["report.top_k=10"]), 10)
    with pytest.raises(ConfigError, match=r"report\.top_k: .*top-1 accuracy is the test accuracy"):
        load_config(None, ["report.top_k=1"])
