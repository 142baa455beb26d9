"""The training engine: the epoch loop and evaluation, the run folder, checkpoints and resume, branching a run from
another's checkpoint, threads, signals, progress lines and the learning-rate schedule (CPU, GPU, AMP, DDP alike)."""
