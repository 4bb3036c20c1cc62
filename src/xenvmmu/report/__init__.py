"""Sweeps, plots and the HTML report: the simulator over a grid, and the whole picture in
one file.

* :mod:`~xenvmmu.report.grid` - a sweep point (scenario, release, paging mode, guest size,
  vCPUs, cost profile, seed) and the grid of them;
* :mod:`~xenvmmu.report.costspec` - a cost profile as plain, picklable data (what a worker on
  another machine needs to rebuild it), with a digest;
* :mod:`~xenvmmu.report.runpoint` - one point run: ``run_scenario`` and the record it gives;
* :mod:`~xenvmmu.report.results` - a record's figures as a typed row and the documented CSV
  columns;
* :mod:`~xenvmmu.report.store` - the sweep directory: ``results.jsonl``, ``results.csv``,
  ``sweep.json``, written a point at a time and resumable;
* :mod:`~xenvmmu.report.runners` - where points run: a local process pool or Dask;
* :mod:`~xenvmmu.report.progress` - the progress bar on stderr;
* :mod:`~xenvmmu.report.sweep` - the sweep itself (:func:`~xenvmmu.report.sweep.run_sweep`);
* :mod:`~xenvmmu.report.plots` - the figures (matplotlib, the optional ``report`` extra);
* :mod:`~xenvmmu.report.digests` - sha256 of the files a report is built from;
* :mod:`~xenvmmu.report.html` - the self-contained HTML report.

Importing this package imports none of its modules: matplotlib and Dask are loaded only by
the code that needs them.
"""
