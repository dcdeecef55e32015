"""The command-line entrypoints (``vidgen-train``, ``vidgen-eval``, ``vidgen-sample``, ``vidgen-features``,
``vidgen-data``, ``python -m vidgen.cli.results``): each composes its config, calls the library, returns."""
