"""One switch shared by every model built on :mod:`hf_eff.reversible` (RevBiFPN, the reversible 3D U-Net)."""

from hf_eff.reversible import ReversibleSequence


class ReversibleModelMixin:
    """Adds :meth:`set_reversible` to a ``PreTrainedModel`` whose config has a boolean ``reversible`` field.

    Reversible and storing modes share every weight, so the same checkpoint can be trained either way; the flag
    is written to the config so that a saved model comes back in the mode it was saved in.
    """

    def set_reversible(self, reversible: bool) -> None:
        """Switch between reversible training (True) and storing activations (False); weights are unchanged."""
        if not isinstance(reversible, bool):
            raise TypeError(f"reversible must be a bool, got {type(reversible).__name__}")
        self.config.reversible = reversible
        for module in self.modules():
            if isinstance(module, ReversibleSequence):
                module.reversible = reversible
