"""Trainer tests run torch on one thread: the toy problems are tiny, and on a busy 2-core CI machine
OpenMP threads spend more time waiting than computing. Subprocess workers do the same, so bitwise
comparisons between processes see the same kernels."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
