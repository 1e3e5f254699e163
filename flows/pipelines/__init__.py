"""Prefect flows and tasks only: each flow hands a Prefect step runner
(:class:`~flows.pipelines.prefect_steps.PrefectSteps`) to the one orchestration path in
:mod:`flows.services.steps`, so it runs the same steps as ``--no-prefect``.

- :mod:`~flows.pipelines.ingest_flows`: ``daily_ingest`` and ``backfill``;
- :mod:`~flows.pipelines.daily_pipeline`: ``pipeline`` (import, ingest subflow, study, report);
- :mod:`~flows.pipelines.schedule`: the daily deployment `aitokens serve` registers;
- :mod:`~flows.pipelines.runners`: threads or Dask for the fetch tasks;
- :mod:`~flows.pipelines.retries`: Prefect retry conditions from the step policies.
"""
