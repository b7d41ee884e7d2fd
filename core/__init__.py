"""Speech Detection Lab core: everything that computes, with no Streamlit import.

Every public function is usable from the CLI (`python -m core ...`), from tests and from the
dashboard pages, which only call into this package. Packages follow the stages of a study;
a stage imports only the stages before it (tests/test_layout.py checks this):

    shared    errors, atomic (writes, locks), paths, decision (the log-odds contract), names (the
              naming rule), csvfiles (reading any CSV the lab reads)
    data      audio, sources, the embedded dataset, importers, splits, audit, condition sets
    detectors the detector interface and its families, the lab base model
    scoring   score a split with a detector -> a predictions table
    analysis  metrics, calibration, thresholds, statistics, psychometrics, errors (reads tables)
    runs      background jobs, run registry, sweeps, the training loop
    prompts   prompt trials and the OPRO search (a background job of its own)
    cli       `python -m core ...`, one module per stage, mirroring the pages
"""

__version__ = "0.1.0"
