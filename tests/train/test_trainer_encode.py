"""encode(): batched inference in input order, in eval mode, without autograd."""

from __future__ import annotations

import pytest
import torch
from trainer_toy import TwoTower, make_pairs

from mmbench.train import encode


def test_trainer_encode_matches_one_shot_for_any_batch_size():
    torch.manual_seed(0)
    model = TwoTower(dropout=0.5)
    view_a, _ = make_pairs(n=53)
    model.eval()
    with torch.no_grad():
        expected = model.encode_a(view_a)
    model.train()
    for batch_size in (1, 7, 53, 100):
        result = encode(model.f, view_a, batch_size=batch_size, device="cpu")
        assert result.shape == (53, 8) and not result.requires_grad
        assert torch.allclose(result, expected, atol=1e-6)
    assert model.training  # restored after encoding in eval mode (dropout would otherwise perturb rows)


def test_trainer_encode_lists_tuples_and_bad_outputs():
    words = [f"w{i}" for i in range(10)]
    lengths = encode(lambda batch: torch.tensor([[float(len(w))] for w in batch]), words, batch_size=3)
    assert lengths.flatten().tolist() == [2.0] * 10
    left, right = torch.arange(6.0)[:, None], torch.ones(6, 1)
    summed = encode(lambda pair: pair[0] + pair[1], (left, right), batch_size=4)
    assert summed.flatten().tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    with pytest.raises(ValueError, match="returned \\(1, 1\\) for a batch of 3 rows"):
        encode(lambda batch: torch.zeros(1, 1), words, batch_size=3)


def test_the_exported_names_stay_functions_after_every_submodule_is_imported():
    """A submodule named like a lazily exported function would replace it on the package once imported
    (``mmbench.train.encode`` was the module, not the function, after ``lifecycle`` loaded it)."""
    import importlib
    import pkgutil

    import mmbench.train as train

    for info in pkgutil.iter_modules(train.__path__):
        importlib.import_module(f"mmbench.train.{info.name}")
    for name in train._LAZY:
        assert callable(getattr(train, name)) and not isinstance(getattr(train, name), type(train)), name
