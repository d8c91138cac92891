"""Kedro pipelines: thin wiring only; the work is done by the domain packages."""
