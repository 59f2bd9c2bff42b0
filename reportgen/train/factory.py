"""Networks from the configuration: the built-in MLP and CNN, or the user's own factory.

A ``kind = "python"`` model names ``factory = "package.module:callable"``.
Importing it runs the user's code, as running a Python file would; a config
is therefore trusted like code (docs/own-data.md).  The
module is imported from the installed packages or from ``code_dir`` (the
directory of the config file), never from a run directory.  User code that
calls ``sys.exit`` stops the run with an error that names it, never a
success; one that ends the process itself (``os._exit``) cannot be told
apart from reportgen ending it.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reportgen.config.schema import ModelSection
from reportgen.core.errors import ConfigError, exit_call
from reportgen.core.text import one_line
from reportgen.train.networks import Shape, build


@contextmanager
def _importable_from(code_dir: Path | None) -> Iterator[None]:
    """Let imports find modules in ``code_dir`` for the duration of the block."""
    if code_dir is None:
        yield
        return
    entry = str(code_dir.resolve())
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):  # the user's code removed it itself
            sys.path.remove(entry)


def load_factory(key: str, factory: str, *, code_dir: Path | None) -> Callable[..., Any]:
    """Import ``module:callable`` and return the callable; failures name ``key``."""
    module_name, _, attribute = factory.partition(":")
    where = f"the installed packages or {code_dir}" if code_dir else "the installed packages"
    with _importable_from(code_dir):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name is not None and module_name.startswith(e.name):
                raise ConfigError(f"{key}: no module named {module_name!r} in {where}") from e
            raise ConfigError(f"{key}: importing {module_name!r} failed: {e}") from e
        except Exception as e:  # the module's own code raised
            raise ConfigError(
                f"{key}: importing {module_name!r} failed: {one_line(e, typed=True)}"
            ) from e
        except SystemExit as e:
            raise ConfigError(
                f"{key}: importing {module_name!r} called {exit_call(e)}; nothing was trained"
            ) from e
    made = getattr(module, attribute, None)
    if made is None:
        raise ConfigError(f"{key}: module {module_name!r} has no attribute {attribute!r}")
    if not callable(made):
        raise ConfigError(f"{key}: {factory} is a {type(made).__name__}, not a callable")
    return made


def refuse_code_from(key: str, factory: str, directory: Path, *, code_dir: Path | None) -> None:
    """Refuse ``factory`` if its module, or a package above it, would come from ``directory``.

    The module is looked up as :func:`load_factory` imports it (``code_dir``
    first on the path) without running it: a package above it is imported
    only once it is known to come from elsewhere.  Each one's file and, for a
    package, every directory its submodules are searched in are checked, so a
    dotted name cannot reach into ``directory`` as a namespace package (a run
    directory ``art`` with ``art/evil.py``, verified from its parent, as
    ``factory = "art.evil:make"``), nor through another entry of the path.
    """
    module_name = factory.partition(":")[0]
    parts = module_name.split(".")
    with _importable_from(code_dir):
        for depth in range(1, len(parts) + 1):
            name = ".".join(parts[:depth])
            try:
                spec = importlib.util.find_spec(name)
            except (Exception, SystemExit):  # importing its package failed: so will the import
                return
            if spec is None:
                return  # not found: the import says so
            places = [spec.origin] if spec.has_location and spec.origin else []
            places += list(spec.submodule_search_locations or [])
            for place in places:
                if _inside(Path(place), directory):
                    raise ConfigError(
                        f"{key}: {name} would be imported from {place}, inside {directory}; "
                        "code from inside a run directory is never run"
                    )


def _inside(path: Path, directory: Path) -> bool:
    """Return whether ``path`` is ``directory`` or inside it, as written or with links resolved."""
    tops = {Path(os.path.abspath(directory)), directory.resolve()}
    for candidate in {Path(os.path.abspath(path)), path.resolve()}:
        if any(candidate == top or top in candidate.parents for top in tops):
            return True
    return False


def call_factory(
    key: str,
    made: Callable[..., Any],
    args: dict[str, Any],
    *,
    input_shape: Shape,
    num_classes: int,
) -> nn.Module:
    """Call the factory with ``args``, and ``num_classes``/``input_shape`` where it takes them."""
    kwargs = dict(args)
    try:
        parameters = inspect.signature(made).parameters
    except (TypeError, ValueError):  # a builtin without a signature: pass args only
        parameters = {}  # type: ignore[assignment]
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    for name, value in (("num_classes", num_classes), ("input_shape", input_shape)):
        if name in kwargs:
            raise ConfigError(f"{key}: args.{name} is set by reportgen from the data; remove it")
        if name in parameters or takes_any:
            kwargs[name] = value
    try:
        network = made(**kwargs)
    except Exception as e:
        raise ConfigError(f"{key}: the factory raised {one_line(e, typed=True)}") from e
    except SystemExit as e:  # sys.exit, or `factory = "sys:exit"`: an error, never a success
        raise ConfigError(
            f"{key}: the factory {_qualified_name(made)} called {exit_call(e)} instead of "
            "returning a network; nothing was trained"
        ) from e
    if not isinstance(network, nn.Module):
        raise ConfigError(
            f"{key}: the factory returned {type(network).__name__}, not a torch.nn.Module"
        )
    return network


def build_network(
    name: str,
    spec: ModelSection,
    *,
    input_shape: Shape,
    num_classes: int,
    code_dir: Path | None = None,
) -> nn.Module:
    """Return a freshly initialised network for ``models.<name>`` (seed the RNG first)."""
    if spec.kind != "python":
        return build(spec.kind, spec.hidden, input_shape=input_shape, num_classes=num_classes,
                     dropout=spec.dropout, batchnorm=spec.batchnorm)  # fmt: skip
    assert spec.factory is not None  # the config requires it
    key = f"models.{name}.factory"
    made = load_factory(key, spec.factory, code_dir=code_dir)
    return call_factory(key, made, spec.args, input_shape=input_shape, num_classes=num_classes)


def check_output(name: str, network: nn.Module, batch: torch.Tensor, num_classes: int) -> None:
    """Run one batch through a fresh copy of the network; its output must be ``[B, classes]``.

    Done in eval mode without gradients, on a network that is then thrown
    away, so the check changes nothing the training sees.
    """
    key = f"models.{name}"
    network.eval()
    try:
        with torch.inference_mode():
            output = network(batch)
    except Exception as e:
        raise ConfigError(
            f"{key}: the network fails on a batch of shape {list(batch.shape)}: "
            f"{one_line(e, typed=True)}"
        ) from e
    except SystemExit as e:
        raise ConfigError(
            f"{key}: the network called {exit_call(e)} on a batch of shape "
            f"{list(batch.shape)}; nothing was trained"
        ) from e
    expected = [batch.shape[0], num_classes]
    if not isinstance(output, torch.Tensor) or list(output.shape) != expected:
        got = list(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ConfigError(
            f"{key}: the network's output for a batch of shape {list(batch.shape)} is {got}; "
            f"it must be {expected} ([batch, classes] logits)"
        )
    if not output.dtype.is_floating_point:
        raise ConfigError(f"{key}: the network's output is {output.dtype}; it must be float logits")
    parameters = list(network.parameters())
    if not any(p.requires_grad for p in parameters):  # the optimizer would have nothing to do
        what = "parameter that requires a gradient" if parameters else "parameters"
        raise ConfigError(
            f"{key}: the network ({type(network).__name__}) has no {what}: nothing to train"
        )


def _qualified_name(made: Callable[..., Any]) -> str:
    """Return ``module:name`` of a callable, as ``models.<name>.factory`` spells it."""
    module = getattr(made, "__module__", None) or "?"
    return f"{module}:{getattr(made, '__qualname__', type(made).__name__)}"


def check_trains_on_one(name: str, network: nn.Module, image: torch.Tensor) -> None:
    """Run a batch of one image ``[1, C, H, W]`` through the network in training mode.

    Called when the training split leaves a batch of one (``data.batch_size``
    of 1, or one training image): BatchNorm over features cannot train on it,
    and that is a configuration to refuse before any training.  The network
    is thrown away afterwards, so its running statistics do not matter.
    """
    network.train()
    try:
        with torch.no_grad():
            network(image)
    except Exception as e:
        raise ConfigError(
            f"models.{name}: the network cannot train on a batch of one image "
            f"({one_line(e, typed=True)}); set data.batch_size to at least 2 and give the "
            "training split at least 2 images"
        ) from e
