"""Verdicts: the statistics' numbers in, decisions out (per-signal classification, the run's
evidence checks and outcome, compare, the original spec's method) and the Report data model."""
