"""Training many small models at once with ``torch.func``.

The parameters of all models are stacked along a new leading axis, and
``vmap`` evaluates one model per slice: each step computes every model's
gradient on its own batch in a single batched call. For small models this
replaces many tiny kernel launches with a few large ones.
"""

import copy
import math
import time

import numpy as np
import torch
from torch.func import functional_call, grad, stack_module_state, vmap
from torch.nn import functional
from tqdm.auto import tqdm

from dpkit._checks import invalid
from dpkit.training import default_device


def _check_supported(models, config):
    if config.private:
        raise invalid(
            "vectorized",
            "False for private configs",
            True,
            "Vectorised training runs plain SGD without clipping or noise; use vectorized=False for DP-SGD reference models.",
        )
    if config.optimizer != "sgd":
        raise invalid(
            "vectorized", f'False for optimizer="{config.optimizer}"', True, 'Use optimizer="sgd", or vectorized=False.'
        )
    if any(True for _ in models[0].buffers()):
        raise invalid(
            "vectorized",
            "False for models with buffers (such as BatchNorm statistics)",
            True,
            "Use vectorized=False, or a model without buffers.",
        )


def _epoch_batches(members, batch_size, steps, rng):
    """Draw one epoch of batch indices per model, shape (n_models, steps * batch_size).

    Each model's members are shuffled and repeated cyclically up to the common
    length, so models with fewer members see a few examples twice.
    """
    return np.stack([np.resize(rng.permutation(index), steps * batch_size) for index in members])


def train_stacked(models, X, y, in_mask, config, *, seed, device=None, progress=True, chunk_size=1024):
    """Train ``models[m]`` on the pool examples where ``in_mask[m]`` is True, all at once.

    SGD follows ``torch.optim.SGD``: weight decay added to the gradient, then
    momentum without dampening or Nesterov.

    Returns
    -------
    logits : torch.Tensor of shape (n_models, n_pool, num_classes), on the CPU
        Every trained model's logits on the whole pool.
    seconds : float
        Wall-clock time for training and scoring all models.
    """
    _check_supported(models, config)
    device = torch.device(device) if device is not None else default_device()
    started = time.perf_counter()

    models = [model.to(device) for model in models]
    params, _ = stack_module_state(models)
    params = {name: value.detach() for name, value in params.items()}
    # The template on the meta device only supplies the forward code; the weights come from params.
    template = copy.deepcopy(models[0]).to("meta")

    def batch_loss(model_params, features, labels):
        return functional.cross_entropy(functional_call(template, model_params, (features,)), labels)

    per_model_gradients = vmap(grad(batch_loss), randomness="different")

    X_device = X.to(device)
    y_device = torch.as_tensor(y).to(device)
    members = [np.flatnonzero(row) for row in in_mask]
    steps = math.ceil(max(len(index) for index in members) / config.batch_size)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
    velocity = None

    for _ in tqdm(range(config.epochs), desc="reference models (vectorised)", unit="epoch", disable=not progress, leave=False):
        batches = torch.as_tensor(_epoch_batches(members, config.batch_size, steps, rng), device=device)
        for step in range(steps):
            index = batches[:, step * config.batch_size : (step + 1) * config.batch_size]
            gradients = per_model_gradients(params, X_device[index], y_device[index])
            with torch.no_grad():
                if config.weight_decay:
                    gradients = {name: g + config.weight_decay * params[name] for name, g in gradients.items()}
                if config.momentum:
                    if velocity is None:
                        velocity = {name: g.clone() for name, g in gradients.items()}
                    else:
                        velocity = {name: config.momentum * velocity[name] + g for name, g in gradients.items()}
                    gradients = velocity
                params = {name: params[name] - config.lr * gradients[name] for name in params}

    with torch.no_grad():
        predict = vmap(lambda model_params, features: functional_call(template, model_params, (features,)), in_dims=(0, None))
        logits = torch.cat([predict(params, X_device[i : i + chunk_size]).cpu() for i in range(0, len(X), chunk_size)], dim=1)
    return logits, time.perf_counter() - started
