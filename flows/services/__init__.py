"""Plain services that the CLI and the Prefect flows both call (no click, no Prefect here).

- :mod:`~flows.services.ingest_options`, :mod:`~flows.services.ingestion`,
  :mod:`~flows.services.ingest_summary`: one ingestion run's options, steps and summary;
- :mod:`~flows.services.steps`: the one orchestration path (ingestion and the daily pipeline as
  named steps, run in-process or as Prefect tasks by a step runner);
- :mod:`~flows.services.csv_import`: the one CSV import sequence;
- :mod:`~flows.services.study`, :mod:`~flows.services.report`, :mod:`~flows.services.pipeline`:
  the event study, the notebook reports and the daily pipeline's steps;
- :mod:`~flows.services.runlock`: one write run at a time per warehouse.
"""
