"""Experiments built on the trainer: the paper's presets, the comparison runner over methods, θ and seeds (with
prefix-shared branches; on this machine or, through :mod:`.engines`, as Ray tasks), ``tsla select`` (choose θ and S
on validation), and the post-hoc diagnosis of a run."""
