"""Prompt chains: fixed multi-step procedures of typed steps (see core.py), and the two shipped chains:
triage (ticket -> a small ranked code context, before every run) and scaffold (a new Go service from a
ticket and the schema registry, proved to build)."""
