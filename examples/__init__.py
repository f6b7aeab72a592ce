"""Runnable examples of sparseinit."""
