"""Issue 30, item 13, as the new user met it: theta and S taken from NumPy (``np.linspace``, an ``np.int64`` epoch),
a framework run cut after 2 epochs and resumed with the framework's own resume. Before the fix, Lightning's resume
failed to load its checkpoint (``weights_only=True`` refuses NumPy scalars) and the Hugging Face trainer failed to
write ``tsla_smoothing.json`` (``np.int64`` is not JSON). Theta at every step is compared with TSLA(3)'s definition
(tests/loops.py)."""

import numpy as np
import pytest
import torch

import tsla
from tests import loops

THETA = np.linspace(0.1, 0.3, 3)[-1]  # np.float64(0.3)
SWITCH = np.int64(3)


def _numpy_scheduler():
    return tsla.SmoothingScheduler(tsla.schedules.two_stage(THETA, SWITCH))


def test_lightning_resumes_a_numpy_theta_from_its_checkpoint(tmp_path):
    L = pytest.importorskip("lightning.pytorch", reason="install the extra: pip install 'tsla[lightning]'")
    from tests.test_integration_lightning import Tiny
    from tsla.integrations.lightning import SmoothingCallback

    x, y = loops.data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=loops.BATCH)
    thetas = []
    for max_epochs, ckpt_path in ((loops.CUT, None), (loops.EPOCHS, str(tmp_path / "last.ckpt"))):
        scheduler = _numpy_scheduler()
        criterion = tsla.LabelSmoothingCrossEntropy(scheduler=scheduler)
        module = Tiny(criterion)
        trainer = L.Trainer(max_epochs=max_epochs, accelerator="cpu", logger=False, enable_progress_bar=False,
                            enable_model_summary=False, num_sanity_val_steps=0,
                            callbacks=[SmoothingCallback(scheduler, criterion),
                                       L.callbacks.ModelCheckpoint(dirpath=tmp_path, save_last=True)])
        with pytest.warns(UserWarning) if max_epochs == loops.CUT else _nothing():  # the cut fit ends before S
            trainer.fit(module, loader, ckpt_path=ckpt_path)
        thetas += module.thetas
    assert thetas == pytest.approx(loops.EXPECTED_THETAS["tsla"], abs=1e-15)
    saved = torch.load(tmp_path / "last.ckpt", weights_only=True)["callbacks"]["tsla.SmoothingCallback"]
    assert saved["schedule"] == {"kind": "two_stage", "theta": 0.3, "drop_epoch": 3, "after": 0.0}


def test_hf_resumes_a_numpy_theta_from_its_checkpoint(tmp_path):
    pytest.importorskip("transformers", reason="install the extra: pip install 'tsla[hf]'")
    pytest.importorskip("accelerate", reason="install the extra: pip install 'tsla[hf]'")
    from tests.test_integration_hf import Tiny, _Record, _args, _dataset
    from tsla.integrations.hf import SmoothingTrainer

    thetas = []
    for stop_after, resume in ((loops.CUT, None), (None, True)):
        scheduler = _numpy_scheduler()
        record = _Record(scheduler, stop_after)
        trainer = SmoothingTrainer(model=Tiny(), args=_args(tmp_path), train_dataset=_dataset(), smoothing=scheduler,
                                   callbacks=[record])
        trainer.train(resume_from_checkpoint=resume)  # the first train() failed writing tsla_smoothing.json
        thetas += record.thetas
    assert thetas == pytest.approx(loops.EXPECTED_THETAS["tsla"], abs=1e-15)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
