"""The model registry: every global model's versions, stored as data with their cards."""

from usertide.models.registry import ModelRegistry, StoredModel

__all__ = ["ModelRegistry", "StoredModel"]
