"""Conversion propensity: the probability that a session reaches a goal."""
