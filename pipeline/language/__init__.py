"""The language phase: storyboard files in, a validated `Plan` out, before a cent is spent.

load -> schema -> model -> templates -> graph -> plan -> film, strung together by `compile`;
the model catalog (`catalog`) says what each model accepts and costs, `continuity` reads the
colour hold and seam thresholds, and `select` cuts a plan down to part of its graph. Pure
stages but `load` (and `compile`, which hashes local images).
"""
