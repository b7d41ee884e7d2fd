"""Stage 6, prompts: scoring candidate prompts for an audio LLM and optimising them (OPRO), honest from
dev to test. Candidates and their checks, the fixed dev subset, the per-prompt report, the
optimiser backends (`proposers/`) and the loop; sits above runs because a study is a
background job of its own."""
