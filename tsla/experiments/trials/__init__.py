"""``tsla.select(train_fn)``: choosing theta, the switch epoch, the final theta and the stopping epoch for any
training loop — the plan of trunks and branches, the trial a loop is handed, the files under ``out``, the choice."""
