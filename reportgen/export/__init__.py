"""Where a run's results go next: flat scalars and DVC-ready tables, the model card, MLflow."""
