"""compile / fit and what they use: loop.py (TrainingMixin: compile, fit, evaluate, predict),
losses.py, metrics.py, callbacks.py, optimizers.py, regularizers.py, saving.py (model files) and
npz.py (the .npz reader and writer). The fastconv package names five of them under their
documented names: fastconv.losses, .metrics, .callbacks, .optim (optimizers.py) and
.regularizers. Nothing is imported here, so the layers can use regularizers.py and the losses
without loading the training loop."""
