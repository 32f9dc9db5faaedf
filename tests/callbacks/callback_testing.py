"""Helpers shared by the callback tests."""

from transformers import TrainerCallback


class RecordLogs(TrainerCallback):
    """Stands in for a report_to integration, which Trainer always calls before user callbacks."""

    def __init__(self):
        self.logs = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.logs.append(dict(logs))
