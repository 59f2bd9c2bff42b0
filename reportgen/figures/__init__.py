"""Plain data -> matplotlib figures in one style, drawn into PNG bytes by a pool of processes."""
