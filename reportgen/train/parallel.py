"""Training a run's models: one self-contained job per model, side by side in processes.

A training step of these small networks is a few dozen short kernels and
their Python dispatch, much of which runs on one core whatever the thread
count: on an idle two-core machine a second thread makes an epoch about 1.5
times faster, not 2, and on a busy one its waits at every kernel's barrier
can make epochs many times slower.  So the models of a run train side by
side, each in a process of its own with a share of the run's threads: both
cores work through the whole stage, and a busy machine slows each model
about as much as it slows everything else.  Each job seeds and builds its
model from the run's seed alone, so a model's bits depend on its own thread
count, not on where or next to what it trained: side by side with one
thread each gives the very models of one after another with one thread
each (tested).

Workers are started with ``spawn`` (a fork of a process whose torch thread
pool is running is unsafe); the data reach them in shared memory, and they
send back plain state-dict bytes, the history and their progress.
"""

from __future__ import annotations

import io
import queue
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.multiprocessing
from torch import nn

from reportgen.config.schema import ModelSection, TrainSection
from reportgen.core.errors import ConfigError, ReportgenError
from reportgen.core.processes import exit_with_parent, sigint_ignored
from reportgen.core.seeding import derive_seed, generator, seed_everything
from reportgen.data.tensors import Split
from reportgen.train.checkpoint import load_checkpoint, save_state
from reportgen.train.factory import build_network
from reportgen.train.loop import EpochRecord, TrainResult, TrainState, train_model

# How long the run's process waits on its workers' messages before it checks
# that each worker is still alive.
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class ModelJob:
    """One model to train: everything a worker needs, as picklable data."""

    name: str
    spec: ModelSection
    seed: int  # the run's seed: the job derives its own streams from it
    train_cfg: TrainSection
    batch_size: int
    train: Split
    val: Split
    checkpoint: Path  # written after every epoch, resumed from if present
    threads: int
    input_shape: tuple[int, int, int]  # [channels, height, width]
    num_classes: int
    code_dir: Path | None = None  # where a python model's factory module may be imported from
    eval_batch_size: int | None = None  # images per validation batch; None: train_cfg's


@dataclass(frozen=True)
class Trained:
    """A trained model, its history and the seconds its training took."""

    name: str
    model: nn.Module
    result: TrainResult
    seconds: float


OnEpoch = Callable[[str, EpochRecord], None]
OnStep = Callable[[str, int, int], None]


def train_one(job: ModelJob, *, on_epoch: OnEpoch, on_step: OnStep) -> Trained:
    """Train one model from a fresh seed state, checkpointing after every epoch."""
    start = time.perf_counter()
    seed_everything(derive_seed(job.seed, "init"), threads=job.threads)
    spec = job.spec
    model = build_network(job.name, spec, input_shape=job.input_shape,
                          num_classes=job.num_classes, code_dir=job.code_dir)  # fmt: skip
    model.to(job.train.x.device)

    def checkpoint(record: EpochRecord, state: TrainState) -> None:
        save_state(job.checkpoint, vars(state))
        on_epoch(job.name, record)

    result = train_model(
        model, job.train, job.val, train_cfg=job.train_cfg, spec=spec,
        batch_size=job.batch_size, eval_batch_size=job.eval_batch_size,
        shuffle=generator(derive_seed(job.seed, "shuffle")),
        resume=load_checkpoint(job.checkpoint), on_epoch=checkpoint,
        on_step=lambda done, total: on_step(job.name, done, total),
    )  # fmt: skip
    return Trained(job.name, model, result, time.perf_counter() - start)


def train_all(
    jobs: Sequence[ModelJob], *, side_by_side: bool, on_epoch: OnEpoch, on_step: OnStep
) -> list[Trained]:
    """Train every job and return the trained models in the jobs' order.

    With ``side_by_side``, every job but the last trains in a worker process
    while the last trains in this one; otherwise they train here, one after
    another.  Progress reaches ``on_epoch`` and ``on_step`` in this process,
    either way.  A worker's error is raised here; when this process stops
    (an error, Ctrl-C), its workers are ended, and a worker whose run process
    has died stops by itself.
    """
    if not side_by_side or len(jobs) < 2:
        return [train_one(job, on_epoch=on_epoch, on_step=on_step) for job in jobs]
    context = torch.multiprocessing.get_context("spawn")
    messages = context.Queue()
    workers = [
        context.Process(target=_work, args=(job, messages), name=f"train-{job.name}", daemon=True)
        for job in jobs[:-1]
    ]
    threads = torch.get_num_threads()
    # Results are kept as sent and turned into models only once this process's
    # own training is over: building a model draws from torch's global RNG,
    # which that training's dropout draws from too.
    finished: dict[str, tuple[bytes, TrainResult, float]] = {}

    def relay(timeout: float | None) -> None:
        """Pass on the workers' messages; wait up to ``timeout`` seconds for the first."""
        while True:
            try:
                message = messages.get(timeout=timeout) if timeout else messages.get_nowait()
            except queue.Empty:
                return
            timeout = None
            kind, name, *payload = message
            if kind == "epoch":
                on_epoch(name, *payload)
            elif kind == "step":
                on_step(name, *payload)
            elif kind == "done":
                finished[name] = payload[0], payload[1], payload[2]
            else:  # "error"
                error, trace = payload
                raise error from _WorkerTraceback(f"in the worker training {name}:\n{trace}")

    try:
        with sigint_ignored():  # Ctrl-C reaches the whole group; this process ends its workers
            for worker in workers:
                worker.start()

        def step_here(name: str, done: int, total: int) -> None:
            on_step(name, done, total)
            relay(timeout=None)

        here = train_one(jobs[-1], on_epoch=on_epoch, on_step=step_here)
        while len(finished) < len(workers):
            relay(timeout=POLL_SECONDS)
            for job, worker in zip(jobs, workers, strict=False):
                if job.name not in finished and worker.exitcode is not None:
                    relay(timeout=POLL_SECONDS)  # its last message may still be in the pipe
                    if job.name not in finished:
                        raise RuntimeError(
                            f"the worker training {job.name} ended without a result "
                            f"(exit code {worker.exitcode})"
                        )
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
            if worker.pid is not None:
                worker.join()
        messages.close()
        torch.set_num_threads(threads)
    return [*(_rebuild(job, *finished[job.name]) for job in jobs[:-1]), here]


class _WorkerTraceback(Exception):
    """Carries a worker's traceback text as the cause of the error it raised."""


def _work(job: ModelJob, messages: Any) -> None:
    """A worker: train ``job`` and send its progress, then its result or error, to the run."""
    # An orphan stops at once: it must not write another checkpoint into a run
    # that is no longer being built (the run's process was killed).
    exit_with_parent()

    def send(*message: Any) -> None:
        messages.put(message)

    try:
        trained = train_one(
            job,
            on_epoch=lambda name, record: send("epoch", name, record),
            on_step=lambda name, done, total: send("step", name, done, total),
        )
    except SystemExit as e:  # user code (the network's) exited: an error of the run, not its end
        shown = "" if e.code is None else repr(e.code)
        error = ConfigError(f"models.{job.name}: user code called sys.exit({shown}) while the "
                            "model trained")  # fmt: skip
        send("error", job.name, error, traceback.format_exc())
        return
    except BaseException as e:
        send("error", job.name, _portable(e), traceback.format_exc())
        return
    buffer = io.BytesIO()
    torch.save(trained.model.state_dict(), buffer)
    send("done", job.name, buffer.getvalue(), trained.result, trained.seconds)


def _rebuild(job: ModelJob, state: bytes, result: TrainResult, seconds: float) -> Trained:
    """Return a worker's result as a model of this process (the global RNG left as it was)."""
    with torch.random.fork_rng(devices=[]):
        model = build_network(job.name, job.spec, input_shape=job.input_shape,
                              num_classes=job.num_classes, code_dir=job.code_dir)  # fmt: skip
    model.load_state_dict(torch.load(io.BytesIO(state), weights_only=True))
    return Trained(job.name, model, result, seconds)


def _portable(error: BaseException) -> BaseException:
    """Return an error the run reports by its type as it is; any other as a RuntimeError."""
    if isinstance(error, ReportgenError | OSError):
        return error  # plain arguments: they pickle, and keep their exit status
    return RuntimeError(f"{type(error).__name__}: {error}")
