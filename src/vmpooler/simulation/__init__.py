"""A discrete-event simulation of one pool over a checkout trace, sized by the manager's own rule."""

from vmpooler.simulation.engine import Lognormal, Result, SimulationSettings, simulate
from vmpooler.simulation.policies import parse_policy
from vmpooler.simulation.trace import Arrival, read_trace

__all__ = ["Arrival", "Lognormal", "Result", "SimulationSettings", "parse_policy", "read_trace", "simulate"]
