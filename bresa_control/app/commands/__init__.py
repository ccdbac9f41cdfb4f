"""The ``bresa`` command line's sub-commands, by group (training, evaluation, the stack)."""
