"""Workflows the scheduler reads from this folder: thin, they submit batch_layer jobs."""
