"""Analysis of finished runs: sweep CSV aggregation, per-run figures, sweep plots, README gallery.

- `aggregate`: one CSV row per job (`llc_sweep_results.csv`), from sweep manifests or run dirs.
- `plots`: the diagnostic figures of one run directory (`llc analyze`).
- `sweep_plots`: a metric against a problem-size column of the sweep CSV (`llc plot-sweep`).
- `promote`: copy chosen figures into `assets/` and rewrite the README gallery
  (`llc promote-readme-images`).

See docs/plots.md for how to read each figure. Importing this package imports nothing heavy;
the plotting modules select matplotlib's headless Agg backend unless MPLBACKEND is set.
"""
