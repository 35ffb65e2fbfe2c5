"""The language phase: storyboard files in, a validated `Plan` out, before a cent is spent.

load -> schema -> model -> templates -> graph -> plan, strung together by `compile`; the
model catalog (`catalog`) says what each model accepts and costs, and `select` cuts a plan
down to part of its graph. Pure stages but `load` (and `compile`, which hashes local images).
"""
