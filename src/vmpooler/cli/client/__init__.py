"""The client verbs of the ``vmpooler`` command (``get``, ``list``, ``delete``, ``token``, ``ondemand``, ...)."""
