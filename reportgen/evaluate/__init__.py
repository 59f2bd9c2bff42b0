"""Predictions -> metrics: classification, calibration, ranking, statistics, the gate, and more."""
