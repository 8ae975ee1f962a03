"""A simulated shop's traffic, as Segment-spec events, for demos and load tests."""

from usertide.demo.simulator import GroundTruth, Simulation, SimulationConfig, Takeover

__all__ = ["GroundTruth", "Simulation", "SimulationConfig", "Takeover"]
