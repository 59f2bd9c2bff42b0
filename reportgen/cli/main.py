"""Argument parsing, progress display and exit codes — the only module that prints.

Exit statuses: 0 success; 1 failure (data, rendering, I/O); 2 usage or
configuration error, a bad template, an output path that may not be
replaced, or a run directory that is not a run or is tampered with; 3 a
``--fail-under`` threshold was missed, or ``--fail-if-worse`` found the
candidate worse; 4 a model's training diverged; 130 interrupted (Ctrl-C /
SIGTERM).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal

from reportgen.cli.display import Display, make_display
from reportgen.config import shortcuts
from reportgen.config.loading import load_config
from reportgen.config.schema import Config
from reportgen.config.toml import to_toml
from reportgen.core.errors import ConfigError, ReportgenError, exit_call
from reportgen.core.text import count, first_few
from reportgen.core.version import VERSION

if TYPE_CHECKING:
    pass

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_THRESHOLD, EXIT_DIVERGED, EXIT_INTERRUPTED = (
    0,
    1,
    2,
    3,
    4,
    130,
)
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE  # 141, as when SIGPIPE ends a program
DEFAULT_CONFIG = Path("config.toml")


class _Interrupted(KeyboardInterrupt):
    """SIGTERM arrived: unwind like Ctrl-C so nothing half-written is published.

    A ``KeyboardInterrupt``, so that user code's ``except Exception`` (a
    factory's) lets it pass, as it lets Ctrl-C pass.
    """


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", "-c", type=Path, default=None,
        help="run configuration (TOML); default: ./config.toml if present, else built-in defaults",
    )  # fmt: skip
    parser.add_argument(
        "--set", "-s", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override one config key, value parsed as TOML (repeatable), e.g. train.epochs=2",
    )  # fmt: skip


def _add_global_options(parser: argparse.ArgumentParser, *, default: object) -> None:
    """Add --debug, --quiet and --verbose; a subcommand's copies default to SUPPRESS.

    Given before or after the command, they mean the same: a subcommand's
    parser leaves them alone unless they are given after the command.
    """
    parser.add_argument("--debug", action="store_true", default=default,
                        help="show tracebacks of failures")  # fmt: skip
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("--quiet", "-q", action="store_true", default=default,
                           help="print only the result and errors")  # fmt: skip
    verbosity.add_argument("--verbose", "-v", action="store_true", default=default,
                           help="on a terminal, also print every epoch's line above the bars "
                           "(elsewhere every epoch is printed anyway)")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="reportgen",
        description="Train or evaluate image classifiers and report on them, reproducibly.",
    )
    parser.add_argument("--version", action="version", version=f"reportgen {VERSION}")
    _add_global_options(parser, default=False)
    common = argparse.ArgumentParser(add_help=False)
    _add_global_options(common, default=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        parents=[common],
        help="train the configured models ([models]; by default baseline and regularized) and "
        "write a complete run directory",
    )
    _add_config_options(run)
    run.add_argument("--out", "-o", type=Path, help="run directory (default: reports/<run.name>)")
    run.add_argument("--resume", action="store_true", help="continue an interrupted run")
    run.add_argument(
        "--templates", type=Path, help="directory of templates overriding the packaged ones"
    )
    _add_gate_options(run)

    _add_evaluate_parser(commands, common)

    render = commands.add_parser(
        "render", parents=[common], help="re-render report.html/.pdf of an existing run"
    )
    render.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    render.add_argument(
        "--templates", type=Path, help="directory of templates overriding the packaged ones"
    )

    verify = commands.add_parser(
        "verify",
        parents=[common],
        help="re-run a run from its saved config and compare every artifact's hash",
    )
    verify.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    verify.add_argument(
        "--data-root", type=Path, metavar="DIR",
        help="where the MNIST/Fashion-MNIST files are (default: the per-user cache; never the "
        "run's data.root)",
    )  # fmt: skip
    verify.add_argument(
        "--data-path", type=Path, metavar="DIR",
        help="the image folder of an imagefolder run (default: the run's data.path)",
    )  # fmt: skip
    verify.add_argument(
        "--allow-code", action="store_true",
        help="import the factory module a kind = \"python\" model names (from the installed "
        "packages or the current directory; never from the run directory) and re-run it",
    )  # fmt: skip

    compare = commands.add_parser(
        "compare", parents=[common], help="an HTML/PDF comparison of several runs"
    )
    compare.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    compare.add_argument("--out", "-o", type=Path, default=Path("reports") / "compare",
                         help="output directory (default: reports/compare)")  # fmt: skip
    compare.add_argument("--no-pdf", action="store_true", help="write only compare.html")

    email = commands.add_parser(
        "email", parents=[common], help="email a run's report (or write it as .eml)"
    )
    email.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    email.add_argument("--to", action="append", default=[], metavar="ADDR", help="recipient")
    email.add_argument("--from", dest="sender", metavar="ADDR", help="sender address")
    email.add_argument("--subject", help="subject (default: run name and accuracies)")
    email.add_argument("--smtp-host", metavar="HOST", help="send through this SMTP server")
    email.add_argument("--smtp-port", type=int, metavar="PORT", help="default 25/587/465")
    security = email.add_mutually_exclusive_group()
    security.add_argument("--starttls", action="store_true", help="upgrade with STARTTLS")
    security.add_argument("--ssl", action="store_true", help="connect over SSL/TLS")
    email.add_argument("--user", help="SMTP user name")
    email.add_argument("--password-env", metavar="VAR",
                       help="environment variable holding the SMTP password")  # fmt: skip
    email.add_argument("--eml-out", type=Path, metavar="FILE", help="write the message here")
    email.add_argument("--templates", type=Path, help="the templates report.html was rendered with")

    _add_sweep_parser(commands, common)
    _add_export_parser(commands, common)

    data = commands.add_parser(
        "data", parents=[common], help="obtain and verify the data (MNIST, Fashion-MNIST)"
    )
    _add_config_options(data)

    show = commands.add_parser(
        "config", parents=[common], help="validate a configuration and print it resolved"
    )
    _add_config_options(show)
    return parser


def _add_gate_options(parser: argparse.ArgumentParser) -> None:
    """Add ``run``'s and ``evaluate``'s CI gates: --fail-under and --fail-if-worse."""
    parser.add_argument(
        "--fail-under", action="append", default=[], metavar="MODEL.METRIC=VALUE",
        help="CI gate (repeatable): exit 3 after rendering if MODEL's METRIC is below VALUE, "
        "e.g. regularized.test_accuracy=0.97 (MODEL: a name in [models])",
    )  # fmt: skip
    parser.add_argument(
        "--fail-if-worse", nargs="?", const="0", default=None, metavar="MARGIN",
        help="CI gate: exit 3 after rendering if the other model is worse than the reference by "
        "more than MARGIN percentage points with 95%% confidence (bare flag: 0); sets "
        "gate.fail_if_worse",
    )  # fmt: skip


def _add_evaluate_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    evaluate = commands.add_parser(
        "evaluate", parents=[common],
        help="report on models trained elsewhere, from checkpoints or predictions files "
        "(trains nothing)",
    )  # fmt: skip
    _add_config_options(evaluate)
    evaluate.add_argument("--out", "-o", type=Path,
                          help="run directory (default: reports/<run.name>)")  # fmt: skip
    evaluate.add_argument(
        "--predictions", action="append", default=[], metavar="NAME=FILE",
        help="a model's test predictions (repeatable); sets models.NAME.predictions",
    )  # fmt: skip
    evaluate.add_argument(
        "--checkpoint", action="append", default=[], metavar="NAME=FILE",
        help="a model's weights (repeatable; its kind comes from the config or --set); sets "
        "models.NAME.checkpoint",
    )  # fmt: skip
    evaluate.add_argument(
        "--reference", metavar="NAME",
        help="the model the other is compared against (default: the first); sets reference",
    )  # fmt: skip
    evaluate.add_argument(
        "--templates", type=Path, help="directory of templates overriding the packaged ones"
    )
    _add_gate_options(evaluate)


def _add_sweep_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    sweep = commands.add_parser(
        "sweep", parents=[common], help="run a grid of settings over several seeds, one report"
    )
    sweep.add_argument("sweep_file", type=Path, metavar="SWEEP.toml")
    sweep.add_argument("--out", "-o", type=Path,
                       help="sweep directory (default: reports/sweep-<file name>)")  # fmt: skip
    sweep.add_argument("--executor", choices=("local", "ray"), default="local",
                       help="where the runs execute (default: local worker processes)")  # fmt: skip
    sweep.add_argument("--workers", type=int, metavar="N",
                       help="local: worker processes (default: cores // runtime.threads); "
                       "ray: runs in flight at once (default: all)")  # fmt: skip
    sweep.add_argument("--ray-address", metavar="ADDR",
                       help="Ray cluster (default: $RAY_ADDRESS, else a new local one)"
                       )  # fmt: skip
    sweep.add_argument("--resume", action="store_true",
                       help="finish an interrupted sweep (so does a re-invocation)")  # fmt: skip
    sweep.add_argument("--yes", action="store_true",
                       help="start a sweep of more than 200 runs")  # fmt: skip
    sweep.add_argument("--no-pdf", action="store_true", help="write sweep.html but no sweep.pdf")
    sweep.add_argument(
        "--fail-under", action="append", default=[], metavar="MODEL.METRIC=VALUE",
        help="CI gate (repeatable): exit 3 if the mean over seeds of any point is below VALUE "
        "(MODEL: a name in the base config's [models])",
    )  # fmt: skip


def _add_export_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    export = commands.add_parser(
        "export", parents=[common], help="send a finished run or sweep to another tool"
    )
    targets = export.add_subparsers(dest="target", required=True, metavar="TARGET")
    mlflow = targets.add_parser(
        "mlflow", parents=[common],
        help="log a run (or a sweep, as nested runs) to an MLflow tracking server",
    )  # fmt: skip
    mlflow.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    mlflow.add_argument(
        "--tracking-uri", metavar="URI",
        help="the tracking server, e.g. http://127.0.0.1:5000 (default: MLFLOW_TRACKING_URI)",
    )  # fmt: skip
    mlflow.add_argument(
        "--experiment", default="reportgen", metavar="NAME",
        help="MLflow experiment, created if needed (default: reportgen)",
    )  # fmt: skip


def _config_path(given: Path | None) -> Path | None:
    if given is not None:
        return given
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None


def _load(args: argparse.Namespace) -> Config:
    overrides = list(args.overrides)
    if getattr(args, "templates", None) is not None:
        overrides.append(f"report.templates={json.dumps(str(args.templates))}")
    from reportgen.data.sources import check_config  # no torch: `config` stays quick

    settings = []
    evaluate = args.command == "evaluate"
    if evaluate:
        settings += shortcuts.evaluate_settings(
            predictions=args.predictions, checkpoints=args.checkpoint, reference=args.reference
        )
    if getattr(args, "fail_if_worse", None) is not None:
        settings.append(shortcuts.fail_if_worse(args.fail_if_worse))
    config = load_config(
        _config_path(args.config), overrides, fail_under=getattr(args, "fail_under", ()),
        settings=settings, evaluate=evaluate,
    )  # fmt: skip
    return check_config(config)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit status.

    Called as the program (no ``argv``), it ends the process itself when
    threads that user code started (a factory's) are still running, which
    the interpreter would otherwise wait for without end: it says so in one
    line, flushes stdout and stderr and exits with the command's status.
    """
    before = set(threading.enumerate())
    status = _main(argv)
    left = [t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon]
    if left:
        names = first_few([t.name for t in left])
        message = f"{count(len(left), 'thread')} that user code started still running ({names})"
        print(f"reportgen: warning: {message}; exiting without waiting for them", file=sys.stderr)
        if argv is None:
            _exit_now(status)
    return status


def _exit_now(status: int) -> None:
    """End the process with ``status`` once stdout and stderr are flushed, waiting for no thread."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed: nothing more reaches its reader
            stream.flush()
    os._exit(status)


def _main(argv: Sequence[str] | None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as e:  # argparse has printed its message
        return EXIT_USAGE if e.code else EXIT_OK
    display = make_display(args)
    previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    try:
        status = _dispatch(args, args_list, display)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's last flush
        return status
    except BrokenPipeError:
        # Whoever read the output stopped reading (`reportgen config | head`): end
        # quietly, with the status of a program that SIGPIPE ended.
        _detach_stdout()
        return EXIT_BROKEN_PIPE
    except ReportgenError as e:
        _error(str(e), args.debug)
        return e.exit_status
    except (KeyboardInterrupt, _Interrupted) as e:
        display.close()
        kept = f"; {e}" if isinstance(e, _Interrupted) and str(e) else ""
        print(f"reportgen: interrupted; the previous run (if any) is unchanged{kept}",
              file=sys.stderr)  # fmt: skip
        return EXIT_INTERRUPTED
    except SystemExit as e:  # no command of reportgen's exits: user code did (a network's)
        _error(f"user code called {exit_call(e)} during `reportgen {args.command}`, which "
               "did not finish", args.debug)  # fmt: skip
        return EXIT_USAGE
    except Exception as e:
        _error(f"internal error: {type(e).__name__}: {e} (rerun with --debug for details)",
               args.debug)  # fmt: skip
        return EXIT_FAILURE
    finally:
        display.close()
        signal.signal(signal.SIGTERM, previous)


def _detach_stdout() -> None:
    """Point stdout at /dev/null, so that nothing more is written into a closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, io.UnsupportedOperation):
        pass  # not a real file (captured in tests): nothing will be flushed into a pipe


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise _Interrupted


def _error(message: str, debug: bool) -> None:
    if debug:
        traceback.print_exc()
    print(f"reportgen: error: {' '.join(message.splitlines())}", file=sys.stderr)


def _dispatch(args: argparse.Namespace, argv: list[str], display: Display) -> int:
    # Each command imports what it needs: `config` must not wait for torch or WeasyPrint.
    if args.command == "data":
        return _data(args, display)
    if args.command == "config":
        display.out(to_toml(_load(args)).rstrip("\n"))
        return EXIT_OK
    if args.command in ("run", "evaluate"):
        return _run(args, argv, display)
    if args.command == "render":
        return _render(args, display)
    if args.command == "verify":
        return _verify(args, display)
    if args.command == "compare":
        from reportgen.run.compare import compare_runs

        for path in compare_runs(args.run_dirs, args.out, pdf=not args.no_pdf):
            display.info(f"wrote {path}")
        display.out(str(args.out))
        return EXIT_OK
    if args.command == "email":
        return _email(args, display)
    if args.command == "sweep":
        return _sweep(args, ["reportgen", *argv], display)
    if args.command == "export":
        return _export(args, display)
    raise AssertionError(f"unhandled command {args.command}")


def _run(args: argparse.Namespace, argv: list[str], display: Display) -> int:
    """Make a run (``run``; ``evaluate``, whose models all name their weights or predictions).

    Print its directory; exit 3 if a gate failed, 4 if a model diverged.
    """
    from reportgen.artifacts import publish
    from reportgen.evaluate.noninferiority import failure_line
    from reportgen.run import pipeline

    config = _load(args)
    path = _config_path(args.config)
    code_dir = path.parent if path is not None else Path.cwd()
    final = args.out if args.out is not None else Path("reports") / config.run.name
    resume = getattr(args, "resume", False)
    try:
        result = pipeline.run(config, out=final, resume=resume,
                              argv=["reportgen", *argv], progress=display.event,
                              code_dir=code_dir)  # fmt: skip
    except (KeyboardInterrupt, _Interrupted) as e:
        partial = publish.partial_path(Path(os.path.abspath(final)))
        if pipeline.worth_resuming(partial):
            raise _Interrupted(
                f"the unfinished run is kept in {partial} (rerun with --resume to continue "
                "from its last epoch)"
            ) from e
        raise
    display.close()
    status = EXIT_OK
    for t in result.failed_thresholds:
        shown = "not measured" if t.value is None else f"{t.value:.4f}"
        display.err(f"reportgen: threshold failed: {t.key} = {shown} < {t.minimum}")
        status = EXIT_THRESHOLD
    significance = result.metrics.significance
    gated = significance.non_inferiority if significance is not None else None
    if gated is not None and not gated.passed:
        display.err(f"reportgen: {failure_line(gated)}")
        status = EXIT_THRESHOLD
    for name in result.diverged:
        advice = "lower train.lr"
        if not result.metrics.models[name].finite_logits:
            advice = f"its logits are not finite: check its network, or {advice}"
        display.err(f"reportgen: model {name!r} diverged (see the report); {advice}")
        status = EXIT_DIVERGED
    display.out(str(result.path))
    return status


def _sweep(args: argparse.Namespace, argv: list[str], display: Display) -> int:
    """Run a sweep and print its directory; exit 1 if a run failed, 3 if a threshold missed."""
    from reportgen.config.sweepspec import load_sweep
    from reportgen.sweep import driver, executors

    spec = load_sweep(args.sweep_file, yes=args.yes)
    names = dict.fromkeys(name for point in spec.points for name in point.config.models)
    fail_under = driver.parse_fail_under(args.fail_under, list(names))
    out = args.out or Path("reports") / f"sweep-{args.sweep_file.stem}"
    threads = max(point.config.runtime.threads for point in spec.points)
    if args.executor == "local":
        workers = executors.local_workers(args.workers, threads, executors.available_cores())

        def make() -> executors.Executor:
            display.info(f"sweep: {workers} local worker(s) × {threads} thread(s)")
            return executors.LocalExecutor(Path(os.path.abspath(out)), workers=workers)

    else:
        if args.workers is not None and args.workers < 1:
            raise ConfigError(f"--workers: must be at least 1 (got {args.workers})")

        def make() -> executors.Executor:
            return executors.RayExecutor(address=args.ray_address, slots=args.workers)

    result = driver.run_sweep(spec, out, make_executor=make, resume=args.resume,
                             fail_under=fail_under, argv=argv, progress=display.event,
                             pdf=not args.no_pdf)  # fmt: skip
    display.close()
    status = EXIT_OK
    for key, error in result.failed.items():
        display.err(f"reportgen: run failed: {key}: {error}")
        status = EXIT_FAILURE
    for t in result.failed_thresholds:
        shown = "not measured" if t.value is None else f"{t.value:.4f}"
        display.err(f"reportgen: threshold failed: {t.point}: mean {t.key} = {shown} < {t.minimum}")
        status = status or EXIT_THRESHOLD
    display.out(str(out))
    return status


def _render(args: argparse.Namespace, display: Display) -> int:
    """Re-render a run's reports from its artifacts and refresh the manifest's hashes."""
    from reportgen.run.render import rerender_run

    for path in rerender_run(args.run_dir, templates_dir=args.templates):
        display.info(f"wrote {path}")
    display.out(str(args.run_dir))
    return EXIT_OK


def _data(args: argparse.Namespace, display: Display) -> int:
    """Obtain and verify the configured data's files (or fingerprint an image folder)."""
    from reportgen.data.sources import source_for

    config = _load(args)
    source = source_for(config.data.dataset)
    acquired = source.acquire(config.data, root=None, progress=display.event)
    for name, digest in acquired.fingerprint.items():
        where = acquired.location if name == "folder" else acquired.location / name
        display.out(f"{digest}  {where}")
    display.out(f"{source.title} verified in {acquired.location} (source: {acquired.source})")
    return EXIT_OK


def _export(args: argparse.Namespace, display: Display) -> int:
    """Log a run or sweep to MLflow; print its MLflow run id (and each child's)."""
    from reportgen.export.to_mlflow import export_mlflow

    exported = export_mlflow(args.run_dir, tracking_uri=args.tracking_uri,
                             experiment=args.experiment)  # fmt: skip
    for run in [exported, *exported.children]:
        done = "logged" if run.created else "already logged"
        display.info(f"{done}: MLflow run {run.run_id} ({run.name})")
    display.out(exported.run_id)
    return EXIT_OK


def _verify(args: argparse.Namespace, display: Display) -> int:
    """Re-run a run and print a line per artifact: match, differs, missing or extra."""
    from reportgen.run.verify import verify_run

    data_root = None if args.data_root is None else str(args.data_root)
    result = verify_run(
        args.run_dir, data_root=data_root, data_path=args.data_path,
        allow_code=args.allow_code, progress=display.event, info=display.info,
    )  # fmt: skip
    display.close()
    if result.data_problem is not None:
        display.err(f"reportgen: not reproduced: {result.data_problem}")
        return EXIT_FAILURE
    width = max((len(c.path) for c in result.checks), default=10)
    for check in result.checks:
        display.out(f"{check.status:8} {check.path:{width}}")
    if result.ok:
        display.out(f"verified: all {len(result.checks)} artifacts reproduced byte for byte")
        return EXIT_OK
    names = sorted(c.path for c in result.checks if c.status != "match")
    display.err(f"reportgen: not reproduced: {', '.join(names)}")
    for note in result.notes:
        display.err(f"reportgen: note: {note}")
    for line in result.environment:
        display.err(f"reportgen: environment changed (likely cause): {line}")
    return EXIT_FAILURE


def _email(args: argparse.Namespace, display: Display) -> int:
    """Write the run's report as an .eml file and/or send it over SMTP."""
    from reportgen.report import mail

    if not args.smtp_host and not args.eml_out:
        raise ConfigError("email: give --smtp-host to send, --eml-out FILE to write, or both")
    sender = args.sender or mail.DEFAULT_SENDER
    message = mail.build_message(args.run_dir, to=args.to, sender=sender, subject=args.subject,
                                 templates_dir=args.templates)  # fmt: skip
    if args.eml_out:
        display.info(f"wrote {mail.write_eml(message, args.eml_out)}")
    if args.smtp_host:
        password = (
            mail.password_from_env(args.password_env, os.environ) if args.password_env else None
        )
        security: Literal["none", "starttls", "ssl"] = (
            "ssl" if args.ssl else "starttls" if args.starttls else "none"
        )
        mail.send(message, host=args.smtp_host, port=args.smtp_port, security=security,
                  user=args.user, password=password)  # fmt: skip
        display.info(f"sent to {', '.join(args.to)} via {args.smtp_host}")
    return EXIT_OK


# --------------------------------------------------------------------------- display
