"""Pipelines: thin pre- and post-processing around random_features/ and video/."""
