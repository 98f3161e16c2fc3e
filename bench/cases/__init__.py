"""One module per ``make bench`` case; each ``run(bench, ...)`` adds its rows to ``bench.results``."""
