"""The columns of ``runs.csv``: those every file has, those added since, and those that hold numbers."""

# a runs.csv written before the last four columns existed still recomputes its contrasts (the last-epoch measure)
REQUIRED_RUN_COLUMNS = ("regime", "label", "method", "theta", "switch_epoch", "seed", "val_top1", "test_top1",
                        "test_nll", "test_ece", "train_top1", "train_onehot_loss", "epochs", "commit")
RUN_COLUMNS = (*REQUIRED_RUN_COLUMNS, "best_val_epoch", "test_top1_at_best_val", "noise_memorised_final",
               "label_noise_type")
# columns that must hold a finite number when not empty (empty: the run did not record it)
NUMBER_COLUMNS = ("theta", "switch_epoch", "seed", "val_top1", "test_top1", "test_nll", "test_ece", "train_top1",
                  "train_onehot_loss", "epochs", "best_val_epoch", "test_top1_at_best_val", "noise_memorised_final")
# the columns a contrast needs besides its metric (see tsla.report.paired.contrasts)
CONTRAST_KEYS = ("regime", "label", "method", "theta", "seed")
