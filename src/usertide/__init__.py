"""usertide: self-hosted real-time user behaviour analysis."""

from usertide.client import Client

__version__ = "0.1.0"

__all__ = ["Client", "__version__"]
