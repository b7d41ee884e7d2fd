"""Stage 3, scoring: a split scored by a detector, and the predictions-table contract every
analysis reads. Imports data and detectors, nothing above."""
