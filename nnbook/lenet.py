"""LeNet-5: kept as a module for older imports; the model is :func:`nnbook.models.LeNet5`."""
from __future__ import annotations

from .models import LeNet5

__all__ = ["LeNet5"]
