"""The stages of a run before its metrics: data, a check of every network, training, prediction.

Each stage takes plain inputs (the config, the dataset, trained networks) and
returns plain outputs; :mod:`reportgen.run.pipeline` times them and writes
what they produce into the run directory.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from reportgen.artifacts.source import ModelSource
from reportgen.config.schema import Config, ModelSection
from reportgen.core import fileio
from reportgen.core.errors import ConfigError, DataError
from reportgen.core.events import Event, Progress, info
from reportgen.core.fontfile import FontFile
from reportgen.core.text import count, first_few, truncate
from reportgen.data import predictions, sources
from reportgen.data.predictions import ScoreKind
from reportgen.data.tensors import Dataset, Split
from reportgen.evaluate import attribution, budget, classification, layers, predict, ranking
from reportgen.evaluate.label_summary import LabelFindings, find_label_issues
from reportgen.evaluate.outcome import ModelOutcome
from reportgen.figures import style
from reportgen.train import pretrained
from reportgen.train.factory import build_network, check_output, check_trains_on_one
from reportgen.train.loop import EpochRecord, TrainResult, batch_sizes
from reportgen.train.networks import parameter_count
from reportgen.train.parallel import ModelJob, Trained, train_all


def resolve_device(requested: str) -> torch.device:
    """Return the torch device for ``runtime.device``; "cuda" without a GPU is a config error."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("runtime.device: 'cuda' requested but no CUDA device is available")
    return torch.device(requested)


def stage_data(
    config: Config, progress: Progress, *, root: str | None = None, font: FontFile | None = None
) -> tuple[sources.Acquired, Dataset]:
    """Obtain and verify the data (from ``root``, default ``data.root``), decode and split it.

    Class names with characters the packaged fonts and ``font`` (``report.font``) lack are
    named in one line.
    """
    acquired, dataset = sources.load(config, root=root, progress=progress)
    if (warning := glyph_warning(dataset.info.classes, font)) is not None:
        progress(info("data", warning))
    return acquired, dataset


def glyph_warning(classes: Sequence[str], font: FontFile | None = None) -> str | None:
    """Return one line naming the classes whose characters the report's fonts lack, or None."""
    have = font.codepoints if font is not None else frozenset()
    lacking = [(name, missing) for name in classes if (missing := style.missing_glyphs(name, have))]
    if not lacking:
        return None
    named = [f"{truncate(name, 40)!r} ({''.join(missing)})" for name, missing in lacking]
    fonts = "the packaged DejaVu fonts" if font is None else "the DejaVu fonts and report.font"
    remedy = "" if font is not None else "; report.font can name a font that has them"
    return (
        f"warning: {fonts} have no glyph for characters in "
        f"{count(len(lacking), 'class name')}, drawn as boxes in the figures and the PDF: "
        f"{first_few(named, 3)}{remedy}"
    )


def to_device(dataset: Dataset, device: torch.device) -> Dataset:
    """Return the dataset with its tensors on ``device`` (the CPU's stay where they are)."""
    if device.type == "cpu":
        return dataset
    return dataclasses.replace(
        dataset,
        train=dataset.train.to(device),
        val=dataset.val.to(device),
        test=dataset.test.to(device),
    )


def stage_check_models(
    config: Config, dataset: Dataset, *, code_dir: Path | None, device: torch.device
) -> dict[str, int]:
    """Build each network once, run one batch through it before any training, and return
    the images each network's evaluation batches hold (:func:`eval_batches`).

    A factory that cannot be imported, raises, returns no module or a network
    whose output is not ``[batch, classes]``, one that cannot train on the
    batch of one image the data leave (BatchNorm), a ``report.layer`` that
    names no module of it, or a memory budget that cannot evaluate one image,
    stops the run here, with one line.  The networks built are thrown away
    and the global RNG is left as it was, so the training that follows is
    exactly what it would have been.
    """
    info = dataset.info
    batch = dataset.train.inputs(slice(0, min(config.data.batch_size, len(dataset.train))))
    batch_of_one = min(batch_sizes(len(dataset.train), config.data.batch_size)) == 1
    per_image: dict[str, int] = {}
    for name, spec in config.model_items():
        if spec.source == "predictions":  # no network: its file is read when it is evaluated
            continue
        with torch.random.fork_rng(devices=[]):
            network = build_network(name, spec, input_shape=info.image_shape,
                                    num_classes=info.num_classes, code_dir=code_dir)  # fmt: skip
            if spec.source == "checkpoint":  # a checkpoint that does not fit stops the run now
                pretrained.load_weights(name, spec, network)
            check_output(name, network.to(device), batch, info.num_classes)
            if batch_of_one and spec.source == "trained":
                check_trains_on_one(name, network, batch[:1])
            layer = config.layer(name)
            if layer is not None:  # a module the network does not have fails now, not later
                key = f"report.layer ({name})"
                layers.layer_output(network, batch[:1], layer=layer, key=key)
            per_image[name] = budget.activation_bytes_per_image(network, batch[:2])
    return eval_batches(config, dataset, per_image)


def eval_batches(config: Config, dataset: Dataset, per_image: dict[str, int]) -> dict[str, int]:
    """Return the images per evaluation batch of each network, given its activation bytes per
    image: ``train.eval_batch_size``, or fewer where the memory budget needs it.

    The budget is ``data.memory_mb``: the data's tensors stay in memory for
    the whole run, and a batch's activations may take half of what they leave
    (the networks, training and figures need the rest).  A network that cannot
    evaluate even one image in that share stops the run, naming the key.
    """
    total = config.data.memory_mb * 2**20
    data_bytes = sum(split.x.numel() * split.x.element_size()
                     for split in (dataset.train, dataset.val, dataset.test))  # fmt: skip
    share = max(0, total - data_bytes) // 2
    for name, size in per_image.items():
        if size > share:
            fix = (
                "raise data.memory_mb or set a smaller data.image_size"
                if dataset.info.kind == "imagefolder"
                else f"use a smaller network for {name}"
            )
            raise DataError(
                f"models.{name}: one image's activations need {_mib(size)} to evaluate, over "
                f"the {_mib(share)} an evaluation batch may take (half of what the "
                f"{_mib(data_bytes)} of data leave of the memory budget of {_mib(total)}, "
                f"data.memory_mb); {fix}"
            )
    configured = config.train.eval_batch_size
    return {
        name: budget.eval_batch_size(
            configured=configured, per_image_bytes=size, budget_bytes=share
        )
        for name, size in per_image.items()
    }


def eval_batch_lines(config: Config, eval_batches: dict[str, int]) -> list[str]:
    """Return one line for each network whose evaluation batches the memory budget shrinks."""
    configured = config.train.eval_batch_size
    return [
        f"{name}: evaluates {count(size, 'image')} at a time, fewer than train.eval_batch_size "
        f"({configured:,}), to stay within the memory budget (data.memory_mb)"
        for name, size in eval_batches.items()
        if size < configured
    ]


def _mib(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB"


def stage_train(
    config: Config,
    dataset: Dataset,
    *,
    device: torch.device,
    work: Path,
    progress: Progress,
    code_dir: Path | None = None,
    eval_batches: dict[str, int] | None = None,
) -> list[Trained]:
    """Train every model the config trains (not those from a checkpoint or predictions file)
    from a fresh seed state, checkpointing each after every epoch.

    ``eval_batches`` holds the images per validation batch of each model
    (:func:`stage_check_models`; ``train.eval_batch_size`` where absent).
    On the CPU, with at least as many ``runtime.threads`` as models, the
    models train side by side, each in a process of its own with
    ``threads // models`` threads; otherwise one after another, here, with
    all of them.  A model's bits depend only on its own thread count.
    """
    jobs = [
        ModelJob(
            name,
            spec,
            seed=config.seed,
            train_cfg=config.train,
            batch_size=config.data.batch_size,
            train=dataset.train,
            val=dataset.val,
            checkpoint=work / f"{name}.ckpt",
            threads=model_threads(config, device),
            input_shape=dataset.info.image_shape,
            num_classes=dataset.info.num_classes,
            code_dir=code_dir,
            eval_batch_size=(eval_batches or {}).get(name),
        )
        for name, spec in trained_items(config)
    ]

    def on_epoch(name: str, record: EpochRecord) -> None:
        progress(Event("epoch", stage="train", model=name, done=record.epoch,
                       total=config.train.epochs, message=_epoch_line(record)))  # fmt: skip

    def on_step(name: str, done: int, total: int) -> None:
        progress(Event("step", stage="train", model=name, done=done, total=total))

    side_by_side = _side_by_side(config, device)
    return train_all(jobs, side_by_side=side_by_side, on_epoch=on_epoch, on_step=on_step)


def trained_items(config: Config) -> list[tuple[str, ModelSection]]:
    """Return ``(name, section)`` of every model the run trains, in training order."""
    return [(name, spec) for name, spec in config.model_items() if spec.source == "trained"]


def _side_by_side(config: Config, device: torch.device) -> bool:
    models = len(trained_items(config))
    return device.type == "cpu" and models > 1 and config.runtime.threads >= models


def model_threads(config: Config, device: torch.device) -> int:
    """Return the threads each model trains with: its share of ``runtime.threads``."""
    threads = config.runtime.threads
    return threads // len(trained_items(config)) if _side_by_side(config, device) else threads


def _epoch_line(record: EpochRecord) -> str:
    return (
        f"epoch {record.epoch}: train loss {record.train_loss:.4f} acc {record.train_accuracy:.4f}"
        f" · val loss {record.val_loss:.4f} acc {record.val_accuracy:.4f} · lr {record.lr:.2e}"
    )


def stage_evaluate(
    config: Config,
    name: str,
    spec: ModelSection,
    model: torch.nn.Module,
    result: TrainResult,
    dataset: Dataset,
    *,
    eval_batch: int | None = None,
) -> ModelOutcome:
    """Predict the test and validation sets, measure the final train accuracy (eval mode) and
    take what the weights and activations figures show.

    The splits go through the network ``eval_batch`` images at a time
    (:func:`stage_check_models`; default ``train.eval_batch_size``).
    Logits that are not all finite on any split mark the model as diverged
    (``finite_logits``): those images get equal probabilities and no attributions.
    """
    batch = eval_batch or config.train.eval_batch_size
    untrained = spec.source != "trained"
    test_logits = predict.predict_logits(model, dataset.test, batch_size=batch)
    val_logits = predict.predict_logits(model, dataset.val, batch_size=batch)
    train_logits = predict.predict_logits(model, dataset.train, batch_size=batch)
    splits = (test_logits, val_logits, train_logits)
    finite = all(np.isfinite(logits).all() for logits in splits)
    test_logits, val_logits, train_logits = (predict.without_non_finite(s) for s in splits)
    proba = predict.proba_from_logits(test_logits)  # one pass over the test set, not two
    train_pred = predict.proba_from_logits(train_logits).argmax(axis=1)
    train_accuracy = classification.accuracy(dataset.train.y.cpu().numpy(), train_pred)
    val_pred = predict.proba_from_logits(val_logits).argmax(axis=1) if untrained else None
    # Weights in the standard layout whatever the network's own (the built-in CNN is
    # channels-last), so model.pt loads anywhere, safetensors included.
    state = {k: v.detach().to("cpu", memory_format=torch.contiguous_format, copy=True)
             for k, v in model.state_dict().items()}  # fmt: skip
    sample = config.report.sample_index
    views = layers.layer_views(
        model, spec.kind, dataset.test.inputs(slice(sample, sample + 1)),
        image_shape=dataset.info.image_shape, layer=config.layer(name), name=name,
    )  # fmt: skip
    return ModelOutcome(
        name, spec, result.history, result.divergence, parameter_count(model), proba,
        train_accuracy, state, model, test_logits, val_logits, views, finite_logits=finite,
        source=file_source(spec) if untrained else ModelSource(),
        val_accuracy=(None if val_pred is None or not len(val_pred)
                      else classification.accuracy(dataset.val.y.cpu().numpy(), val_pred)),
    )  # fmt: skip


def file_source(spec: ModelSection, scores: ScoreKind | None = None) -> ModelSource:
    """Return how an untrained model came: its file's kind, name and SHA-256."""
    path = Path(spec.checkpoint or spec.predictions or "").expanduser()
    return ModelSource(kind=spec.source, file=path.name, sha256=fileio.sha256_path(path),
                       scores=scores)  # fmt: skip


def stage_load(
    config: Config, name: str, spec: ModelSection, dataset: Dataset, *,
    code_dir: Path | None, device: torch.device,
) -> torch.nn.Module:  # fmt: skip
    """Return the network of ``models.<name>`` with its checkpoint's weights, on ``device``."""
    info = dataset.info
    network = build_network(name, spec, input_shape=info.image_shape,
                            num_classes=info.num_classes, code_dir=code_dir)  # fmt: skip
    return pretrained.load_weights(name, spec, network).to(device)


def stage_predictions(
    config: Config, name: str, spec: ModelSection, dataset: Dataset
) -> ModelOutcome:
    """Return the outcome of a model evaluated from its predictions file: no network.

    Probabilities are used as the file gives them (float32); logits become
    float32 probabilities by the same softmax a network's do, and are kept
    (float64) for the test loss.  Nothing needs the training or validation
    split, so those have no accuracy, and no temperature is fitted.
    """
    assert spec.predictions is not None  # only a predictions model comes here
    path = Path(spec.predictions).expanduser()
    read = predictions.read_predictions(
        path, key=f"models.{name}.predictions", labels=dataset.test.y.cpu().numpy(),
        num_classes=dataset.info.num_classes, model=spec.predictions_model or name,
    )  # fmt: skip
    test_logits: np.ndarray | None = None
    proba = read.scores
    if read.kind == "logits":
        test_logits = read.scores.astype(np.float64)
        proba = predict.proba_from_logits(test_logits)
    views = layers.LayerViews(weights=None, unit="Neuron", activations=None, variant={})
    return ModelOutcome(
        name, spec, [], None, None, proba, None, None, None, test_logits, None, views,
        source=file_source(spec, read.kind),
    )  # fmt: skip


def model_inputs(split: Split, indices: np.ndarray) -> torch.Tensor:
    """Return the normalised model inputs of ``split``'s images at ``indices``."""
    return split.inputs(torch.as_tensor(indices, dtype=torch.int64, device=split.x.device))


def stage_attributions(
    config: Config, outcome: ModelOutcome, dataset: Dataset, *, eval_batch: int | None = None
) -> ModelOutcome:
    """Return ``outcome`` with Integrated Gradients maps of every misclassified image shown.

    Images larger than 28 × 28 get fewer steps and images (``attribution.plan``).
    Where the memory budget cut ``eval_batch``, the images of an evaluation
    batch (:func:`stage_check_models`), below ``train.eval_batch_size``, a pass
    of the path integral is sized from it (``attribution.pass_rows``).
    A model whose logits are not finite has none: its gradients would not be either;
    nor has a model without a network (a predictions file).
    """
    if not outcome.finite_logits or outcome.model is None:
        return outcome
    y_test = dataset.test.y.cpu().numpy()
    info = dataset.info
    chosen = attribution.plan(config.report.attribution_steps, info.image_shape)
    bounded = eval_batch is not None and eval_batch < config.train.eval_batch_size
    shown = attribution.shown_indices(
        y_test, outcome.predictions, config.report, num_classes=info.num_classes,
        pairs=sources.confused_pairs(config, info.classes), limit=chosen.images,
    )  # fmt: skip
    maps = attribution.attribute(
        outcome.model, model_inputs(dataset.test, shown), indices=shown,
        predicted=outcome.predictions[shown], true=y_test[shown], image_shape=info.image_shape,
        mean=info.mean, std=info.std, steps=chosen.steps, images=chosen.images,
        internal_batch_size=attribution.pass_rows(eval_batch if bounded else None),
    )  # fmt: skip
    return dataclasses.replace(outcome, attributions=maps)


def stage_rank(outcome: ModelOutcome, dataset: Dataset) -> ModelOutcome:
    """Return ``outcome`` with its one-vs-rest areas and curves, ranked once for both
    ``metrics.json`` and the ROC and precision-recall figures; none where its logits
    are not finite (nothing is measured from them)."""
    if not outcome.finite_logits:
        return outcome
    y_test = dataset.test.y.cpu().numpy()
    return dataclasses.replace(outcome, ranked=ranking.ranked(outcome.proba, y_test))


def stage_label_issues(outcomes: Sequence[ModelOutcome], dataset: Dataset) -> LabelFindings:
    """Return the suspected label errors of the test split, from every model with finite logits.

    A model whose logits are not finite gave some images equal probabilities,
    which say nothing about their labels.
    """
    return find_label_issues(
        {o.name: o.proba for o in outcomes if o.finite_logits},
        dataset.test.y.cpu().numpy(),
        classes=dataset.info.classes,
        files=dataset.info.test_files,
    )
