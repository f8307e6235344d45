"""Retraining: triggers, the challenger flow and canary analysis."""
