"""Data files of the router: the labelled example bank and the fitted combination (bench/routing.py --tune)."""
