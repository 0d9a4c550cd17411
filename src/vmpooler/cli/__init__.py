"""The ``vmpooler`` command line."""
