"""Networks, factories, optimizers, the one training loop, checkpoints and training side by side."""
