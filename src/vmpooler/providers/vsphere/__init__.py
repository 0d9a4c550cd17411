"""The vSphere provider: pools of VMs cloned from templates in vCenter (see docs/providers/vsphere.md)."""

from vmpooler.providers.vsphere.options import VSphereOptions, VSpherePoolOptions
from vmpooler.providers.vsphere.provider import VSphereProvider

__all__ = ["VSphereOptions", "VSpherePoolOptions", "VSphereProvider"]
