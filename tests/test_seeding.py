from __future__ import annotations

import torch

from reportgen.core.seeding import derive_seed, generator, seed_everything


def test_seeding_repeats_draws() -> None:
    seed_everything(7, threads=1)
    first = torch.rand(3)
    seed_everything(7, threads=1)
    assert torch.equal(first, torch.rand(3))
    assert torch.equal(generator(5).get_state(), generator(5).get_state())


def test_derived_seeds_are_stable_and_distinct() -> None:
    assert derive_seed(0, "split") == derive_seed(0, "split")
    assert derive_seed(0, "split") != derive_seed(0, "shuffle")
    assert 0 <= derive_seed(123, "init") < 2**63
