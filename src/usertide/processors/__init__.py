"""Built-in per-user processors: sessions, behaviour features, profile."""

from usertide.processors.features import BehaviourFeatures, FeatureState
from usertide.processors.profile import Profile, ProfileState
from usertide.processors.sessions import Sessionizer, SessionState

__all__ = [
    "BehaviourFeatures",
    "FeatureState",
    "Profile",
    "ProfileState",
    "SessionState",
    "Sessionizer",
]
