"""Stage 5, runs: background jobs, the run registry, sweeps and the training loop. Sits above
analysis because a run reports dev metrics while it trains and a sweep aggregates them."""
