"""The Amazon EC2 provider: pools of instances launched from AMIs with boto3 (``:providers: :ec2:``)."""

from vmpooler.providers.ec2.options import EC2Options, EC2PoolOptions
from vmpooler.providers.ec2.provider import EC2Provider

__all__ = ["EC2Options", "EC2PoolOptions", "EC2Provider"]
