"""The paper's quantities made measurable: σ², δ, θ* = 1/(1+δ) and the floor, estimated from per-example and
mini-batch gradients (with their unbiased Gram-matrix estimators) during or after training."""
