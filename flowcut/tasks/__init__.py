"""Benchmarks as data: loaders (``registry``), versioned answer parsers (``parsers``), metrics
(``metrics``) and the generated suite (``suite``). Import the submodules directly: this package
imports nothing, so that ``suite.scene`` and ``suite.tasks`` load without ``datasets``."""
