"""VMs proven healthy at hand-out: the network check, the checkout step that runs it, and failover."""

from vmpooler.health.failover import Failover
from vmpooler.health.gate import HandoutGate
from vmpooler.health.probe import probe

__all__ = ["Failover", "HandoutGate", "probe"]
