"""Stage 4, analysis: metrics, calibration, thresholds, statistics and comparison,
psychometrics and error analysis. Reads predictions tables (and manifests), never models:
imports data and scoring only."""
