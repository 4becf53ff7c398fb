"""Helpers of the GitHub fake: GitHub's published REST description and a response validator."""
