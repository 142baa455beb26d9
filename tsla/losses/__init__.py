"""Losses: label-smoothing cross-entropy for any prior ŷ (torch parity for the uniform one; a closed form with a
hand-written backward where it is faster), its one-hot and prior terms, binary / multi-label smoothing, the input
checks (values read once per tensor version), and the priors (uniform, class frequency, a file)."""
