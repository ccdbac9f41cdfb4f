"""The application layer: the `bresa` command line, evaluation, plots and rendering."""
