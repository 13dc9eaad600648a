"""``lazy-adam``: Adam that updates only the embedding rows a step touched (TensorFlow's ``LazyAdam``,
torch's ``SparseAdam``), and plain Adam for every dense parameter, in one optimizer.

A parameter whose gradient is sparse (``nn.Embedding(..., sparse=True)``, ``EmbeddingBag(sparse=True)``,
``F.embedding(..., sparse=True)``) gets Adam's update on the rows in its gradient only; the moments of the
other rows are left as they are (not decayed), which is what makes the step cost O(touched rows) instead
of O(table): for a 333,000 x 100 word table with a second table of context vectors, dense Adam spends
most of each step reading and writing 66M parameters and their moments. Same ``(lr, betas, eps)``
meaning and bias correction as ``torch.optim.Adam`` (a dense parameter's update equals it up to float
rounding); no weight decay on sparse parameters (it would touch every row). The state is a standard
``state_dict`` (``step``, ``exp_avg``, ``exp_avg_sq`` per parameter), so checkpoints and exact resume
work unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


class LazyAdam(torch.optim.Optimizer):
    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        if not lr > 0 or not eps > 0 or not all(0 <= b < 1 for b in betas) or weight_decay < 0:
            raise ValueError(f"lazy-adam: bad hyper-parameters lr={lr}, betas={betas}, eps={eps}, "
                             f"weight_decay={weight_decay}")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001 (torch's signature)
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                grad = param.grad
                if grad is None:
                    continue
                state = self.state[param]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                state["step"] += 1
                step = float(state["step"])
                correction1, correction2 = 1 - beta1 ** step, 1 - beta2 ** step
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                if grad.is_sparse:
                    if group["weight_decay"]:
                        raise RuntimeError("lazy-adam: weight decay is not supported for sparse gradients")
                    grad = grad.coalesce()
                    rows, values = grad.indices()[0], grad.values()
                    avg = exp_avg[rows].mul_(beta1).add_(values, alpha=1 - beta1)
                    avg_sq = exp_avg_sq[rows].mul_(beta2).addcmul_(values, values, value=1 - beta2)
                    exp_avg[rows], exp_avg_sq[rows] = avg, avg_sq
                    denominator = (avg_sq / correction2).sqrt_().add_(group["eps"])
                    param[rows] = param[rows] - group["lr"] * (avg / correction1) / denominator
                    continue
                if group["weight_decay"]:
                    grad = grad.add(param, alpha=group["weight_decay"])
                exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denominator = (exp_avg_sq / correction2).sqrt_().add_(group["eps"])
                param.addcdiv_(exp_avg, denominator, value=-group["lr"] / correction1)
        return loss
