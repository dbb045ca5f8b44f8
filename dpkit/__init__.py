"""dpkit: a Jupyter teaching and experimentation kit for differential privacy in deep learning."""

from dpkit._checks import DPKitWarning

__version__ = "0.1.0"

__all__ = ["DPKitWarning", "__version__"]
