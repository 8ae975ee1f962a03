"""Evaluation of detectors: simulated labelled traffic, online replay, metrics, baselines."""
