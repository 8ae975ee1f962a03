"""Sign-in risk: per-user likelihood (Freeman et al. 2016) plus velocity and travel signals."""

from usertide.risk.aftermath import LoginAftermath
from usertide.risk.assess import Assessment, NetworkActivity, assess
from usertide.risk.config import RiskConfig
from usertide.risk.detector import FEEDBACK_EVENT, LoginRisk, NetworkVelocity, is_login
from usertide.risk.features import LoginFeatures, login_features
from usertide.risk.history import LoginHistory
from usertide.risk.population import Population, train_population

__all__ = [
    "FEEDBACK_EVENT",
    "Assessment",
    "LoginAftermath",
    "LoginFeatures",
    "LoginHistory",
    "LoginRisk",
    "NetworkActivity",
    "NetworkVelocity",
    "Population",
    "RiskConfig",
    "assess",
    "is_login",
    "login_features",
    "train_population",
]
