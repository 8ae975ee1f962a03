"""Analytics computed where the data lives: trends, funnels, Bayesian conversion rates."""
