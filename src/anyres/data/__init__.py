"""Datasets and samplers for training."""
