"""Pieces shared by the apps and the configuration. A leaf: nothing here imports an app."""
