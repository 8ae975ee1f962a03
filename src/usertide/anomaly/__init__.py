"""Anomaly scoring of sessions: an exact, fast re-implementation of a fitted
scikit-learn IsolationForest's ``score_samples`` (``forest.py``) that can be stored
without pickle."""
