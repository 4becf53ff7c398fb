"""The static tamper guard: a Go analyzer's facts about the base and the patched tree, compared.

`guard.check_applied` is the one function every consumer calls on git's own diff of an applied
patch; `facts` holds the comparison (pure); `tool` builds and runs the analyzer and applies a patch
to a copy (the only part that starts processes).
"""
