"""The optimisers the trainer steps: torch's own Adam, AdamW and SGD arithmetic (the fused kernels on CPU
and CUDA, else the functional API of torch.optim) behind a small class with torch.optim's state layout.

Why not torch.optim.Adam itself: constructing any torch.optim.Optimizer imports torch._dynamo, ~70 MB
resident (a fifth of a CPU process training on MNIST), and its step() wrapper costs Python time every
step. The update is the same kernel either way; tests compare both bit for bit.
"""
from __future__ import annotations

from typing import Any

import torch
from torch.optim.adam import adam
from torch.optim.adamw import adamw
from torch.optim.sgd import sgd


class FusedOptimizer:
    """Adam, AdamW or SGD with momentum over one parameter group. `param_groups[0]['lr']` is read
    every step (learning-rate schedules write it); state_dict() matches torch.optim's layout."""

    def __init__(self, params, kind: str, lr: float, weight_decay: float = 0.0, momentum: float = 0.9,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        if kind not in ("adam", "adamw", "sgd"):
            raise ValueError(f"unknown optimizer '{kind}'")
        self.kind = kind
        self.params = [p for p in params if p.requires_grad]
        self.param_groups = [{"params": self.params, "lr": lr, "weight_decay": weight_decay, "momentum": momentum,
                              "betas": betas, "eps": eps}]
        self.state: dict[torch.Tensor, dict[str, Any]] = {}
        # fused kernels exist for floating tensors on CPU and CUDA; elsewhere torch picks its own path
        self.fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in self.params) or None

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        g = self.param_groups[0]
        params = [p for p in self.params if p.grad is not None]
        grads = [p.grad for p in params]
        if self.kind == "sgd":
            bufs = [self.state.setdefault(p, {}).get("momentum_buffer") for p in params]
            sgd(params, grads, bufs, fused=self.fused, weight_decay=g["weight_decay"], momentum=g["momentum"],
                lr=g["lr"], dampening=0.0, nesterov=False, maximize=False)
            if g["momentum"]:  # the functional API allocates the buffers on the first step
                for p, b in zip(params, bufs):
                    self.state[p]["momentum_buffer"] = b
            return
        states = [self._adam_state(p) for p in params]
        exp_avgs, exp_avg_sqs, steps = [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states], \
            [s["step"] for s in states]
        hyper = dict(amsgrad=False, beta1=g["betas"][0], beta2=g["betas"][1], lr=g["lr"],
                     weight_decay=g["weight_decay"], eps=g["eps"], maximize=False)
        if self.fused and len({(p.device, p.dtype) for p in params}) == 1:
            # the fused kernel itself: the functional API's checks and grouping cost ~50 us a step
            torch._foreach_add_(steps, 1)
            (torch._fused_adamw_ if self.kind == "adamw" else torch._fused_adam_)(
                params, grads, exp_avgs, exp_avg_sqs, [], steps, **hyper)
            return
        (adamw if self.kind == "adamw" else adam)(params, grads, exp_avgs, exp_avg_sqs, [], steps, fused=self.fused,
                                                  **hyper)

    def _adam_state(self, p: torch.Tensor) -> dict:
        s = self.state.get(p)
        if s is None:
            s = self.state[p] = {"step": torch.zeros((), dtype=torch.float32, device=p.device),
                                 "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                                 "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format)}
        return s

    def state_dict(self) -> dict:
        index = {p: i for i, p in enumerate(self.params)}
        group = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        return {"state": {index[p]: dict(s) for p, s in self.state.items()},
                "param_groups": [{**group, "params": list(range(len(self.params)))}]}

    def load_state_dict(self, sd: dict) -> None:
        group = {k: v for k, v in sd["param_groups"][0].items() if k != "params"}
        if "betas" in group:
            group["betas"] = tuple(group["betas"])  # JSON gives a list
        self.param_groups[0].update(group)
        self.state = {}
        for i, s in sd["state"].items():
            p = self.params[int(i)]
            self.state[p] = {k: v.to(p.device) if isinstance(v, torch.Tensor) else v for k, v in s.items()}
            if "step" in self.state[p] and not isinstance(self.state[p]["step"], torch.Tensor):
                self.state[p]["step"] = torch.tensor(float(self.state[p]["step"]), device=p.device)
