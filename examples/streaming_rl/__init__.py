"""Streaming Q(lambda) with sparse initialisation: the library's main demo."""
