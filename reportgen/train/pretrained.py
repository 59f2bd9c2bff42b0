"""A network that is not trained: its weights from a state dict the user already has.

``models.NAME.checkpoint`` names the file: ``torch.save``'s (read with
``torch.load(weights_only=True)``, so no pickled code ever runs) or a
``.safetensors`` file.  A nested checkpoint (Lightning's ``.ckpt`` holds the
state dict under ``"state_dict"``, its keys prefixed ``"model."``) is read
with ``checkpoint_key`` and ``checkpoint_prefix``.  Every problem a user can
fix is one line naming the key: no such file, a pickle ``weights_only``
refuses, no state dict at the key, missing and unexpected parameter names,
a shape that differs.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reportgen.config.schema import ModelSection
from reportgen.core.errors import ConfigError
from reportgen.core.text import first_few, one_line

SAFETENSORS_SUFFIX = ".safetensors"


def checkpoint_path(spec: ModelSection) -> Path:
    """Return the checkpoint's path as the config gives it (``~`` expanded)."""
    assert spec.checkpoint is not None  # only a checkpoint model has one
    return Path(spec.checkpoint).expanduser()


def _refusal(error: Exception) -> str:
    # A weights-only refusal wraps its reason in paragraphs of advice; keep the reason.
    advice = ("Weights only load failed", "Please file an issue", "Check the documentation",
              "(1)", "(2)")  # fmt: skip
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    reason = next((line for line in lines if not line.startswith(advice)), None)
    if reason is not None:  # "WeightsUnpickler error: Unsupported global: … Please use …"
        reason = reason.removeprefix("WeightsUnpickler error: ").split(" Please use ")[0]
    return " ".join((reason or (lines[0] if lines else type(error).__name__)).split())


def read_file(path: Path, *, key: str) -> Any:
    """Return the object a checkpoint file holds; one line naming ``key`` when it cannot be read."""
    if not path.is_file():
        raise ConfigError(f"{key}: {path}: no such file")
    if path.suffix == SAFETENSORS_SUFFIX:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(path, device="cpu")
        except (SafetensorError, OSError, ValueError) as e:
            raise ConfigError(
                f"{key}: {path}: not a readable .safetensors file: {one_line(e)}"
            ) from e
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about files it then refuses anyway
            return torch.load(path, weights_only=True, map_location="cpu")
    except Exception as e:  # torch raises UnpicklingError, RuntimeError, EOFError, …
        raise ConfigError(
            f"{key}: {path}: not a state dict torch.load(weights_only=True) can read "
            f"(a pickle of code or other objects is refused): {_refusal(e)}"
        ) from e


def state_dict_of(
    payload: Any, *, path: Path, key: str, nested: str | None, prefix: str | None
) -> dict[str, torch.Tensor]:
    """Return the state dict in ``payload``: at ``nested`` if given, with ``prefix`` stripped.

    Keys without the prefix are kept as they are (a Lightning module's own
    buffers beside its network), so the mismatch check names them.
    """
    where = f"{key}: {path}"
    if nested is not None:
        if not isinstance(payload, Mapping) or nested not in payload:
            keys = list(payload) if isinstance(payload, Mapping) else []
            listed = f" (its keys: {first_few([repr(k) for k in keys], 5)})" if keys else ""
            raise ConfigError(f"{where}: has no {nested!r} (checkpoint_key){listed}")
        payload = payload[nested]
    if not isinstance(payload, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in payload.items()
    ):
        hint = "" if nested is not None else "; a nested checkpoint needs checkpoint_key"
        raise ConfigError(f"{where}: is not a state dict (names → tensors){hint}")
    if prefix is None:
        return dict(payload)
    return {k.removeprefix(prefix): v for k, v in payload.items()}


def mismatch(expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor]) -> str | None:
    """Return one line naming the missing and unexpected keys, or the first shape that differs."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} key(s): {first_few(missing, 3)}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} key(s): {first_few(unexpected, 3)}")
        return "; ".join(parts)
    for name, tensor in expected.items():
        if tuple(found[name].shape) != tuple(tensor.shape):
            return (
                f"{name} has shape {list(found[name].shape)} in the checkpoint, "
                f"{list(tensor.shape)} in the network"
            )
    return None


def _prefix_hint(expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor]) -> str:
    """Return a hint at checkpoint_prefix when every found key is an expected one, prefixed."""
    heads = {k.split(".", 1)[0] for k in found if "." in k}
    if len(heads) != 1:
        return ""
    prefix = f"{heads.pop()}."
    if {k.removeprefix(prefix) for k in found} != set(expected):
        return ""
    return f' (set checkpoint_prefix = "{prefix}")'


def load_weights(name: str, spec: ModelSection, network: nn.Module) -> nn.Module:
    """Load ``models.<name>.checkpoint`` into ``network`` (in place) and return it.

    Raises
    ------
    ConfigError
        The file is missing or refused, holds no state dict, or its keys or
        shapes differ from the network's (one line naming them).
    """
    key = f"models.{name}.checkpoint"
    path = checkpoint_path(spec)
    state = state_dict_of(read_file(path, key=key), path=path, key=key,
                          nested=spec.checkpoint_key, prefix=spec.checkpoint_prefix)  # fmt: skip
    problem = mismatch(network.state_dict(), state)
    if problem is not None:
        hint = _prefix_hint(network.state_dict(), state) if spec.checkpoint_prefix is None else ""
        raise ConfigError(f"{key}: {path} does not fit the network: {problem}{hint}")
    with torch.no_grad():
        network.load_state_dict(state, strict=True)
    return network
