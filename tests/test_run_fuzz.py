"""Property: templates, manifests and metrics from anywhere render or exit 2, in one line.

The configuration has its own fuzz test (``test_config_fuzz.py``); these
cover the other inputs a user may get from someone else: a template
directory, a run directory's ``manifest.json`` and its ``metrics.json``;
degenerate data a run must train on or refuse in one line; a model
factory that does what no factory should (exit, leave threads running,
hang, have nothing to train); and networks whose logits are not finite
(diverged: exit 4, the report written).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reportgen.artifacts import manifest as manifest_mod
from reportgen.cli.main import main
from tests.conftest import CliRunner, QuickMnist, quick_overrides
from tests.imagefolder_fixture import make_image_folder
from tests.synthetic import make_run, rehash

FIXTURES = [HealthCheck.function_scoped_fixture]
FAKE_CLI = Path(__file__).with_name("fake_cli.py")
FRAGMENTS = [
    "{{", "}}", "{%", "%}", "{#", "#}", " ", "x", "1", "9", "'a'", "(", ")", "[", "]", ".", ",",
    "|", "~", "+", "*", "**", "-", "/", "%", "==", "if", "else", "endif", "for", "in", "endfor",
    "set", "=", "macro", "endmacro", "call", "include", "extends", "import", "block", "endblock",
    "'partials/summary.html.j2'", "'frame.html.jinja2'", "'css/report.css'", "'/etc/passwd'",
    "'../x'", "self",
    "super()", "loop", "range(3)", "cycler", "lipsum", "namespace()", "joiner", "dict(a=1)",
    "__class__", "__mro__", "__globals__", "__init__", "__subclasses__()",
    "_TemplateReference__context",
    "models", "run_name", "titles", "toc", "reproducibility", "pct", "num", "sci", "format",
    "attr('__class__')", "upper", "append(1)", "update(x=1)", "pop()", "'{0.__class__}'",
    "|pct", "|num", "|safe", "|e", "|map(attribute='name')", "|list", "|join(',')", "\n", "<", ">",
]  # fmt: skip
templates = st.lists(st.sampled_from(FRAGMENTS), max_size=24).map("".join)


def _check(status: int, err: str) -> None:
    assert status in (0, 2), err
    assert "internal error" not in err and "Traceback" not in err, err
    if status == 2:
        assert err.startswith("reportgen: error: ") and err.count("\n") == 1, err


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic run of ``tests/synthetic.py`` (HTML only: it lists no PDF)."""
    return make_run(tmp_path_factory.mktemp("fuzz") / "run")


@settings(max_examples=120, deadline=None, suppress_health_check=FIXTURES)
@given(
    template=templates,
    name=st.sampled_from(["partials/summary.html.j2", "pages/report.html.j2", "frame.html.jinja2"]),
)
def test_random_templates_render_or_exit_2(
    synthetic: Path, template: str, name: str, tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    work = tmp_path_factory.mktemp("t")
    run = Path(shutil.copytree(synthetic, work / "run"))
    (work / "templates" / name).parent.mkdir(parents=True)
    (work / "templates" / name).write_text(template)
    _check(
        main(["render", str(run), "--templates", str(work / "templates")]), capsys.readouterr().err
    )
    assert not (work / "pwned").exists()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8)
    | st.sampled_from(["../../etc/passwd", "/etc/passwd", "0" * 64, "run", "compare"]),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)  # fmt: skip
MANIFEST_KEYS = [
    "schema", "kind", "seed", "data_files", "environment", "environment.threads",
    "environment.versions", "environment.hardware", "environment.parallel_info",
    "environment.git_commit", "artifacts", "artifacts.metrics.json", "artifacts.config.toml",
    "artifacts.metrics.json.sha256", "artifacts.metrics.json.size", "artifacts.../../etc/passwd",
    "artifacts.figures/lr.png", "timings_s", "inputs", "run_name", "command", "data_source",
]  # fmt: skip


def _set(document: dict[str, Any], dotted: str, value: Any, delete: bool) -> None:
    """Set or delete a key; artifact paths contain dots, so they are split off whole."""
    head, _, rest = dotted.partition(".")
    if head == "artifacts" and rest:
        path, _, field = rest.partition(".json.")
        path = path + ".json" if field else rest
        entry = document.setdefault("artifacts", {})
        if not isinstance(entry, dict):  # an earlier edit made it something else
            return
        if field and isinstance(entry.get(path), dict):
            entry, path = entry[path], field
        target, key = entry, path
    else:
        *parents, key = dotted.split(".")
        target = document
        for part in parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                return
    if delete:
        target.pop(key, None)
    else:
        target[key] = value


def edits(keys: list[str]) -> st.SearchStrategy[list[tuple[str, Any, bool]]]:
    """Up to three edits of a JSON document: (dotted key, new value, delete instead)."""
    return st.lists(
        st.tuples(st.sampled_from(keys), json_values, st.booleans()), min_size=1, max_size=3
    )


def _edit_and_run(
    synthetic: Path, work: Path, name: str, changes: list[tuple[str, Any, bool]], command: str
) -> int:
    """Copy the run into ``work``, apply ``changes`` to its file ``name``, run ``command`` on it."""
    run = Path(shutil.copytree(synthetic, work / "run"))
    document = json.loads((run / name).read_text())
    for key, value, delete in changes:
        _set(document, key, value, delete)
    (run / name).write_text(json.dumps(document))
    if name != "manifest.json":
        rehash(run)  # a consistent run whose file is wrong, not a tampered one
    args = {
        "render": ["render", str(run)],
        "email": ["email", str(run), "--to", "a@example.org", "--eml-out", str(work / "m.eml")],
    }[command]
    return main(args)


@settings(max_examples=120, deadline=None, suppress_health_check=FIXTURES)
@given(changes=edits(MANIFEST_KEYS), command=st.sampled_from(["render", "email"]))
def test_mutated_manifests_render_or_exit_2(
    synthetic: Path, changes: list[tuple[str, Any, bool]], command: str,
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    work = tmp_path_factory.mktemp("m")
    status = _edit_and_run(synthetic, work, "manifest.json", changes, command)
    _check(status, capsys.readouterr().err)


@settings(max_examples=60, deadline=None, suppress_health_check=FIXTURES)
@given(
    position=st.integers(min_value=0, max_value=4000),
    delete=st.integers(min_value=0, max_value=12),
    insert=st.binary(max_size=8) | st.sampled_from([b"[", b"{", b'"', b"\xff", b"../", b"-1"]),
)
def test_byte_mutated_manifests_exit_0_or_2(
    synthetic: Path, position: int, delete: int, insert: bytes,
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    run = Path(shutil.copytree(synthetic, tmp_path_factory.mktemp("b") / "run"))
    raw = (run / "manifest.json").read_bytes()
    (run / "manifest.json").write_bytes(raw[:position] + insert + raw[position + delete :])
    _check(main(["render", str(run)]), capsys.readouterr().err)


METRICS_KEYS = [
    "schema", "run", "run.name", "dataset.test_size", "models", "models.baseline",
    "models.baseline.test_accuracy", "models.baseline.accuracy_ci",
    "models.baseline.accuracy_ci.level", "models.baseline.divergence", "models.baseline.figures",
    "models.baseline.figures.weights", "models.baseline.pair_galleries",
    "models.baseline.class_errors", "models.baseline.worst_classes",
    "models.baseline.diagnosis.labels", "models.other", "significance", "significance.models",
    "significance.mcnemar.p_value", "comparison", "figures", "figures.lr",
]  # fmt: skip


@settings(max_examples=120, deadline=None, suppress_health_check=FIXTURES)
@given(changes=edits(METRICS_KEYS), command=st.sampled_from(["render", "email"]))
def test_mutated_metrics_render_or_exit_2(
    synthetic: Path, changes: list[tuple[str, Any, bool]], command: str,
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    work = tmp_path_factory.mktemp("x")
    status = _edit_and_run(synthetic, work, "metrics.json", changes, command)
    _check(status, err := capsys.readouterr().err)
    if status == 2 and command == "render":  # email also needs a rendered report
        assert "metrics.json" in err, err


# --------------------------------------------------------------------------- degenerate data

QUICK = ["train.epochs=1", "report.pdf=false", "report.attributions=false", "runtime.threads=1"]


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(FAKE_CLI), "--quiet", *args], env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip


def _sets(items: list[str]) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


def test_a_last_batch_of_one_image_trains(
    quick_mnist: QuickMnist, cli: CliRunner, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    # 65 training images in batches of 32: the last image joins the second batch.
    sets = [*quick_overrides(quick_mnist.root), *QUICK, "report.render=false",
            "data.limit_train=65", "data.limit_test=50"]  # fmt: skip
    result = cli("--quiet", "run", "--out", str(out), *_sets(sets), specs=quick_mnist.specs)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert json.loads((out / "metrics.json").read_text())["dataset"]["train_size"] == 65


@pytest.mark.parametrize(
    ("classes", "status"),
    [(("circle", "square", "triangle", "cross"), 0), (("circle", "square"), 2)],
)
def test_one_image_per_class_trains_or_is_refused_in_one_line(
    classes: tuple[str, ...], status: int, cli: CliRunner, tmp_path: Path
) -> None:
    folder = make_image_folder(tmp_path / "images", classes=classes, per_class_train=1,
                               per_class_test=1)  # fmt: skip
    out = tmp_path / "run"
    sets = [f"data.path={json.dumps(str(folder))}", 'data.dataset="imagefolder"',
            "data.image_size=16", *QUICK, "report.render=false"]  # fmt: skip
    result = cli("--quiet", "run", "--out", str(out), *_sets(sets))
    assert result.returncode == status, result.stderr
    if status == 0:
        assert result.stderr == "" and (out / "metrics.json").is_file()
    else:
        # Two images, one held out for validation: one training image, a batch of one.
        assert result.stderr.count("\n") == 1 and result.stderr == (
            "reportgen: error: models.regularized: the network cannot train on a batch of one "
            "image (ValueError: Expected more than 1 value per channel when training, got input "
            "size torch.Size([1, 256])); set data.batch_size to at least 2 and give the training "
            "split at least 2 images\n"
        )
        assert not out.exists() and not list(tmp_path.rglob("*.ckpt"))


# --------------------------------------------------------------------------- hostile factories
# A config that names a factory runs its code. Whatever that code does, the
# command ends with the right status and one line, and publishes no half run.
# Each runs the real command line in a process of its own (tests/fake_cli.py).

HOSTILE = """
import os
import sys
import threading
import time

from torch import nn


class Linear(nn.Module):
    def __init__(self, num_classes, input_shape, exit_in=()):
        super().__init__()
        channels, height, width = input_shape
        self.linear = nn.Linear(channels * height * width, num_classes)
        self.exit_in = exit_in

    def forward(self, x):
        if ("training" if self.training else "evaluation") in self.exit_in:
            sys.exit(0)
        return self.linear(x.flatten(1))


class NoParameters(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.num_classes = num_classes

    def forward(self, x):
        return x.flatten(1)[:, : self.num_classes]


def linear(num_classes, input_shape):
    return Linear(num_classes, input_shape)


def exits(num_classes, input_shape):
    sys.exit(0)


def exits_in_forward(num_classes, input_shape):
    return Linear(num_classes, input_shape, exit_in=("training", "evaluation"))


def exits_in_training(num_classes, input_shape):
    return Linear(num_classes, input_shape, exit_in=("training",))


def no_parameters(num_classes):
    return NoParameters(num_classes)


def frozen(num_classes, input_shape):
    return Linear(num_classes, input_shape).requires_grad_(False)


def starts_a_thread(num_classes, input_shape):
    threading.Thread(target=time.sleep, args=(3600,), name="user-sleeper").start()
    return Linear(num_classes, input_shape)


def hangs(num_classes, input_shape):
    open("started", "w").close()
    while True:
        try:
            time.sleep(3600)
        except Exception:  # careless, but Ctrl-C and SIGTERM still get through
            pass


def ends_the_process(num_classes, input_shape):
    os._exit(3)
"""


def _project(where: Path) -> Path:
    """Write the hostile factories into ``where``, the directory the command runs in."""
    (where / "hostile.py").write_text(HOSTILE)
    (where / "exits_on_import.py").write_text("import sys\n\nsys.exit(0)\n")
    return where


def _cli_env(mnist: QuickMnist) -> dict[str, str]:
    specs = {name: [spec.size, spec.sha256] for name, spec in mnist.specs.items()}
    return {**os.environ, "REPORTGEN_TEST_FILES": json.dumps(specs)}


def _run_args(mnist: QuickMnist, factory: str, *extra: str) -> list[str]:
    """``reportgen run --out out`` of the regularized model ``factory``: 1 epoch, little data."""
    sets = [
        *quick_overrides(mnist.root), "train.epochs=1", "data.limit_train=300",
        "data.limit_test=200", "report.attributions=false", "report.render=false",
        'models.regularized.kind="python"',
        f"models.regularized.factory={json.dumps(factory)}", *extra,
    ]  # fmt: skip
    return [sys.executable, str(FAKE_CLI), "--quiet", "run", "--out", "out",
            *[a for s in sets for a in ("--set", s)]]  # fmt: skip


def _run(mnist: QuickMnist, project: Path, factory: str, *extra: str) -> CompletedProcess[str]:
    return subprocess.run(_run_args(mnist, factory, *extra), cwd=project, env=_cli_env(mnist),
                          capture_output=True, text=True, timeout=600)  # fmt: skip


def _run_here(
    cli: CliRunner, mnist: QuickMnist, project: Path, factory: str, *extra: str
) -> CompletedProcess[str]:
    """``_run`` in this process: for code that only raises (``sys.exit`` is SystemExit)."""
    result = cli(*_run_args(mnist, factory, *extra)[2:], specs=mnist.specs, cwd=project)
    return CompletedProcess([], result.returncode, result.stdout, result.stderr)


# (factory of the regularized model, more --set items, the error), refused before training.
BEFORE_TRAINING = {
    "sys.exit": (
        "hostile:exits",
        (),
        "models.regularized.factory: the factory hostile:exits called sys.exit(0) "
        "instead of returning a network; nothing was trained",
    ),
    "sys:exit": (
        "sys:exit",
        (),
        "models.regularized.factory: the factory sys:exit called sys.exit() instead of "
        "returning a network; nothing was trained",
    ),
    "exit on import": (
        "exits_on_import:make",
        (),
        "models.regularized.factory: importing 'exits_on_import' called "
        "sys.exit(0); nothing was trained",
    ),
    "exit in forward": (
        "hostile:exits_in_forward",
        (),
        "models.regularized: the network called sys.exit(0) on a batch of shape "
        "[32, 1, 28, 28]; nothing was trained",
    ),
    "no parameters": (
        "hostile:no_parameters",
        (),
        "models.regularized: the network (NoParameters) has no parameters: nothing to train",
    ),
    "frozen parameters": (
        "hostile:frozen",
        (),
        "models.regularized: the network (Linear) has no parameter that "
        "requires a gradient: nothing to train",
    ),
}
# The same, once training has started.
IN_TRAINING = {
    "exit in training": (
        "hostile:exits_in_training",
        (),
        "user code called sys.exit(0) during the run, which did not finish",
    ),
    # With two threads the baseline trains in a worker process: its exit is an error too.
    "exit in a worker": (
        "hostile:linear",
        (
            "runtime.threads=2",
            'models.baseline.kind="python"',
            'models.baseline.factory="hostile:exits_in_training"',
        ),
        "models.baseline: user code called sys.exit(0) while the model trained",
    ),
}


@pytest.mark.parametrize("case", [*BEFORE_TRAINING, *IN_TRAINING])
def test_a_factory_that_exits_or_has_nothing_to_train_is_one_line_exit_2(
    quick_mnist: QuickMnist, cli: CliRunner, tmp_path: Path, case: str
) -> None:
    factory, extra, message = {**BEFORE_TRAINING, **IN_TRAINING}[case]
    project = _project(tmp_path)
    # Only the exit in a worker process needs the command's own process (and its workers).
    if case == "exit in a worker":
        result = _run(quick_mnist, project, factory, *extra)
    else:
        result = _run_here(cli, quick_mnist, project, factory, *extra)
    kept = ""
    if (project / ".out.partial").exists():  # a checkpoint to resume from: kept, and named
        kept = (
            f"; the unfinished run is kept in {project / '.out.partial'} (rerun with --resume "
            "to continue from its last epoch, or delete it)"
        )
    assert (result.returncode, result.stderr, result.stdout) == (
        2, f"reportgen: error: {message}{kept}\n", "",
    )  # fmt: skip
    assert not (project / "out").exists()  # nothing published
    if case in BEFORE_TRAINING:  # no checkpoint: nothing was trained
        assert not list(project.rglob("*.ckpt"))


def test_threads_a_factory_leaves_running_do_not_keep_the_command_alive(
    quick_mnist: QuickMnist, tmp_path: Path
) -> None:
    project = _project(tmp_path)
    # Both models from the factory, with two threads: the baseline trains in a worker
    # process, which the run ends although the thread keeps it from exiting by itself.
    result = _run(quick_mnist, project, "hostile:starts_a_thread", "runtime.threads=2",
                  'models.baseline.kind="python"',
                  'models.baseline.factory="hostile:starts_a_thread"')  # fmt: skip
    # One thread per network built in this process: checked, trained, rebuilt from the worker.
    assert (result.returncode, result.stdout, result.stderr) == (
        0, "out\n",
        "reportgen: warning: 4 threads that user code started still running (user-sleeper, "
        "user-sleeper, user-sleeper, user-sleeper); exiting without waiting for them\n",
    )  # fmt: skip
    run = project / "out"
    assert manifest_mod.check_artifacts(run, manifest_mod.read_manifest(run).artifacts) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_hanging_factory_is_interrupted_with_130(
    quick_mnist: QuickMnist, tmp_path: Path, signum: int
) -> None:
    project = _project(tmp_path)
    process = subprocess.Popen(_run_args(quick_mnist, "hostile:hangs"), cwd=project,
                               env=_cli_env(quick_mnist), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        while not (project / "started").exists():
            assert process.poll() is None, process.communicate()
            time.sleep(0.05)
        process.send_signal(signum)
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert (process.returncode, out, err) == (
        130, "", "reportgen: interrupted; the previous run (if any) is unchanged\n",
    )  # fmt: skip
    assert not (project / "out").exists() and not list(project.rglob("*.ckpt"))


def test_a_factory_that_ends_the_process_chooses_the_exit_status(
    quick_mnist: QuickMnist, tmp_path: Path
) -> None:
    """As documented: ``os._exit`` in user code ends reportgen too, with that code's status."""
    project = _project(tmp_path)
    result = _run(quick_mnist, project, "hostile:ends_the_process")
    assert (result.returncode, result.stdout, result.stderr) == (3, "", "")
    assert not (project / "out").exists()


# Networks whose logits are not finite: from the start (the training loss too), only in
# eval mode (the training loss stays finite), and weights so large the output overflows.
NAN_FACTORIES = """
import torch
from torch import nn


class _Linear(nn.Module):
    def __init__(self, num_classes, input_shape, nan_when):
        super().__init__()
        self.fc = nn.Linear(input_shape[0] * input_shape[1] * input_shape[2], num_classes)
        self.nan_when = nan_when

    def forward(self, x):
        out = self.fc(x.flatten(1))
        if self.nan_when == "always" or (self.nan_when == "eval" and not self.training):
            return out * float("nan")
        return out


def nan_always(num_classes, input_shape):
    return _Linear(num_classes, input_shape, "always")


def nan_in_eval(num_classes, input_shape):
    return _Linear(num_classes, input_shape, "eval")


def overflowing(num_classes, input_shape):
    net = _Linear(num_classes, input_shape, "never")
    with torch.no_grad():
        net.fc.weight.fill_(3e38)
    return net
"""


def _nan_project(folder: Path, factory: str) -> Path:
    """Write the factories and a config whose regularized model is ``factory`` into ``folder``."""
    folder.mkdir()
    (folder / "hostile.py").write_text(NAN_FACTORIES)
    config = folder / "hostile.toml"
    config.write_text(
        f'[models.baseline]\n[models.regularized]\nkind = "python"\nfactory = "hostile:{factory}"\n'
    )
    return config


@pytest.mark.parametrize(
    ("factory", "epoch", "verify"),
    [("nan_always", 1, False), ("nan_in_eval", None, True), ("overflowing", 1, False)],
)
def test_a_model_without_finite_logits_is_reported_as_diverged(
    factory: str,
    epoch: int | None,
    verify: bool,
    quick_mnist: QuickMnist,
    cli: CliRunner,
    tmp_path: Path,
) -> None:
    from reportgen.artifacts.manifest import read_manifest
    from reportgen.artifacts.metrics import read_metrics

    root = quick_mnist.root
    config = _nan_project(tmp_path / "project", factory)
    out = tmp_path / "run"
    sets = [*quick_overrides(root), *QUICK, "data.limit_train=200", "data.limit_test=100"]
    result = cli("--quiet", "run", "--config", str(config), "--out", str(out), *_sets(sets),
                 specs=quick_mnist.specs)  # fmt: skip
    assert result.returncode == 4, result.stderr
    assert result.stderr == (
        "reportgen: model 'regularized' diverged (see the report); its logits are not finite: "
        "check its network, or lower train.lr\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project", "run"]
    # metrics.json validates: the model marked, what needs finite logits null.
    metrics = read_metrics(out, read_manifest(out))
    model = metrics.models["regularized"]
    assert model.divergence is not None and not model.divergence.finite_logits
    assert model.divergence.epoch == epoch
    assert (model.test_loss, model.calibration, model.one_vs_rest) == (None, None, None)
    assert sorted(model.figure_notes) == ["pr", "reliability", "roc"]
    # Equal probabilities for every test image: class 0 predicted, so accuracy is its share.
    assert model.test_accuracy == metrics.dataset.test_support[0] / metrics.dataset.test_size
    assert metrics.models["baseline"].divergence is None
    assert metrics.models["baseline"].calibration is not None
    html = (out / "report.html").read_text()
    assert "This model diverged." in html and "logits are not finite" in html
    assert html.count("Not measured: the regularized model") == 2  # calibration, ranking
    assert html.count("cannot be drawn: its logits are not finite.") >= 3
    summary = json.loads((out / "summary.json").read_text())
    assert summary["models"]["regularized"]["diverged"] is True
    if verify:  # the run is reproduced byte for byte, NaN and all
        verified = cli("--quiet", "verify", str(out), "--allow-code", "--data-root", str(root),
                       specs=quick_mnist.specs, cwd=config.parent)  # fmt: skip
        assert verified.returncode == 0, verified.stderr
        assert verified.stderr == ""
        assert verified.stdout.splitlines()[-1].startswith("verified: all ")
