"""Seeds: one function makes a process deterministic, and each random purpose gets its own seed."""

from __future__ import annotations

import hashlib
import os
import random

import numpy as np
import torch


def seed_everything(seed: int, *, threads: int) -> None:
    """Seed Python, NumPy and torch, pin the thread count and demand deterministic kernels.

    Bitwise results depend on the number of threads (reductions split
    differently), so the count is part of what a run promises to reproduce.
    """
    # cuBLAS needs this before its first use to be deterministic; harmless on CPU.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False


def generator(seed: int, *, device: str = "cpu") -> torch.Generator:
    """Return a fresh torch generator seeded with ``seed``: every shuffle gets its own."""
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


def derive_seed(seed: int, purpose: str) -> int:
    """Return a stable 63-bit seed for one purpose (``"split"``, ``"init"``, ``"shuffle"`` …).

    Every model re-seeds from the same purposes, so each starts from the
    same state whether it is trained alone, after another model, or in a
    process of its own.
    """
    digest = hashlib.sha256(f"{seed}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)
