"""A grid of settings × seeds as ordinary runs, on local processes or Ray, and the sweep report."""
