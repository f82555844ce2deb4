"""Shared foundations below every stage: errors, atomic files, units, environment settings, options, pictures.

Nothing here imports torch, typer or rich; every other subpackage may import from here.
"""
