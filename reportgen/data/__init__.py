"""The data of a run: one DataSource per data.dataset, its files verified, decoded and split."""
