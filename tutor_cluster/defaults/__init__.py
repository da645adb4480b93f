"""Shipped defaults (package data): settings files, the exercise set and a sample curriculum. Found through
``importlib.resources``, so an installed wheel runs from any directory."""
