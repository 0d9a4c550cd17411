"""``python -m vmpooler``: the same as the ``vmpooler`` command."""

from vmpooler.cli.entry import main

main()
