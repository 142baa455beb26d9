"""Losses: label-smoothing cross-entropy for any prior ŷ (exact torch parity for the uniform one), its one-hot and
prior terms from one softmax, the input checks, and the priors (uniform, class frequency, a file)."""
