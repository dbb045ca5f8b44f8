"""Small Opacus-compatible models, and validating and fixing a user's model.

The default CNN follows the design that works well under DP-SGD on small images
(Papernot et al. 2021, "Tempered Sigmoid Activations for Deep Learning with
Differential Privacy"; Tramer and Boneh 2021): few parameters, bounded ``tanh``
activations and no BatchNorm, because per-sample gradients must not mix examples.
"""

import copy
import warnings

import torch
from opacus.validators import ModuleValidator
from torch import nn

from dpkit._checks import DPKitWarning, check_choice, check_int, invalid

MODELS = ("cnn", "mlp", "logreg")


class CNN(nn.Module):
    """Two convolutions and two dense layers for ``(1, 28, 28)`` or ``(1, 8, 8)`` images."""

    def __init__(self, input_shape=(1, 28, 28), num_classes=10):
        super().__init__()
        channels, height, width = input_shape
        if (height, width) == (28, 28):
            self.features = nn.Sequential(
                nn.Conv2d(channels, 16, kernel_size=8, stride=2, padding=3),  # 16 x 14 x 14
                nn.Tanh(),
                nn.MaxPool2d(2, stride=1),  # 16 x 13 x 13
                nn.Conv2d(16, 32, kernel_size=4, stride=2),  # 32 x 5 x 5
                nn.Tanh(),
                nn.MaxPool2d(2, stride=1),  # 32 x 4 x 4
            )
            flat = 32 * 4 * 4
        elif (height, width) == (8, 8):
            self.features = nn.Sequential(
                nn.Conv2d(channels, 16, kernel_size=3, padding=1),  # 16 x 8 x 8
                nn.Tanh(),
                nn.MaxPool2d(2),  # 16 x 4 x 4
                nn.Conv2d(16, 32, kernel_size=3, padding=1),  # 32 x 4 x 4
                nn.Tanh(),
                nn.MaxPool2d(2),  # 32 x 2 x 2
            )
            flat = 32 * 2 * 2
        else:
            raise invalid(
                "input_shape",
                "(C, 28, 28) or (C, 8, 8) for the CNN",
                tuple(input_shape),
                "Resize the images, or pass your own model to dpkit.training.train.",
            )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(flat, 32), nn.Tanh(), nn.Linear(32, num_classes)
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def _mlp(in_features, num_classes, hidden=(64,)):
    layers, width = [nn.Flatten()], in_features
    for size in hidden:
        layers += [nn.Linear(width, size), nn.Tanh()]
        width = size
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def make_model(name="cnn", *, input_shape, num_classes, seed=None):
    """Build one of the built-in Opacus-compatible models.

    Parameters
    ----------
    name : {"cnn", "mlp", "logreg"}
        ``cnn`` for 28x28 or 8x8 images; ``mlp`` (one hidden layer of 64 tanh units)
        and ``logreg`` (a single linear layer) for any input, flattened.
    input_shape : tuple of int
        Shape of one example, e.g. ``dataset.input_shape``.
    num_classes : int
    seed : int, optional
        Seed of the weight initialisation; the global torch generator is left alone.

    Examples
    --------
    >>> model = make_model("cnn", input_shape=(1, 28, 28), num_classes=10, seed=0)
    >>> sum(p.numel() for p in model.parameters())
    26010
    """
    check_choice("name", name, MODELS)
    num_classes = check_int("num_classes", num_classes, "A classifier needs at least 2 classes.", minimum=2)
    input_shape = tuple(int(s) for s in input_shape)
    if seed is not None:
        check_int("seed", seed, "Pass a non-negative integer seed.", minimum=0)

    # fork_rng keeps the caller's global random state unchanged by building a model.
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        if name == "cnn":
            if len(input_shape) != 3:
                raise invalid(
                    "input_shape", "an image shape (C, H, W) for the CNN", input_shape, 'Use name="mlp" for tabular data.'
                )
            return CNN(input_shape, num_classes)
        in_features = 1
        for size in input_shape:
            in_features *= size
        return _mlp(in_features, num_classes, hidden=(64,) if name == "mlp" else ())


def default_model_for(dataset):
    """Name of the built-in model that suits a dataset: ``cnn`` for images, else ``mlp``."""
    return "cnn" if len(dataset.input_shape) == 3 else "mlp"


def _describe(module):
    text = type(module).__name__
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)):
        return f"{text}({module.num_features})"
    return text


def _unsupported_layers(model):
    """Layers with trainable parameters that Opacus's hooks cannot give per-sample gradients."""
    from opacus.grad_sample import GradSampleModule

    supported = tuple(GradSampleModule.GRAD_SAMPLERS)
    found = []
    for name, module in model.named_modules():
        own = [p for p in module.parameters(recurse=False) if p.requires_grad]
        if own and not isinstance(module, supported):
            found.append(f"{name or 'model'} ({type(module).__name__})")
    return found


def make_private_compatible(model):
    """Return a copy of ``model`` that Opacus can train with per-sample gradients.

    Opacus's ``ModuleValidator`` finds the layers that break per-sample gradients.
    BatchNorm layers are replaced with GroupNorm (BatchNorm mixes the examples of a
    batch, so one example's gradient would depend on the others), and in-place
    activations are switched off. One ``DPKitWarning`` lists every change.
    A layer that cannot be fixed raises ``ValueError`` naming it.
    The caller's model is not modified.
    """
    if not isinstance(model, nn.Module):
        raise invalid("model", "a torch.nn.Module", type(model).__name__, "Pass the model object itself.")

    changes = []
    fixed = copy.deepcopy(model)
    for name, module in fixed.named_modules():
        if hasattr(module, "inplace") and module.inplace:
            module.inplace = False
            changes.append(f"{name or 'model'}: {type(module).__name__}(inplace=True) -> inplace=False")

    errors = ModuleValidator.validate(fixed, strict=False)
    if errors:
        before = {name: _describe(module) for name, module in fixed.named_modules()}
        fixed = ModuleValidator.fix(fixed)
        after = {name: type(module).__name__ for name, module in fixed.named_modules()}
        for name, description in before.items():
            if name in after and after[name] != description.split("(")[0]:
                changes.append(f"{name}: {description} -> {after[name]}")

    remaining = [str(error) for error in ModuleValidator.validate(fixed, strict=False)]
    unsupported = _unsupported_layers(fixed)
    if unsupported:
        remaining.append("no per-sample gradient rule for layer " + ", ".join(unsupported))
    if remaining:
        details = "; ".join(remaining)
        raise ValueError(
            f"model contains layers that Opacus cannot train privately and dpkit cannot fix: {details}. "
            "Replace those layers with supported ones (see opacus.validators)."
        )
    if changes:
        warnings.warn(
            "make_private_compatible changed the model so that Opacus can compute per-sample "
            "gradients: " + "; ".join(changes) + ".",
            DPKitWarning,
            stacklevel=2,
        )
    return fixed
