"""Configuration of :class:`CraftMapsForClassification`: the kernel, the random map and the ECOC ridge head."""

from transformers import PreTrainedConfig


class CraftMapsConfig(PreTrainedConfig):
    r"""
    Everything needed to rebuild a CRAFTMaps classifier: the polynomial kernel (gamma <x, y> + coef0) ** degree,
    the compact random map (up-projection to ``n_components_up``, down-projection to ``n_components``, drawn from
    ``seed``) and the one-pass ridge head onto error-correcting output codes.

    Args:
        num_features (`int`, *optional*, defaults to 64):
            Input dimension d (an image of shape (C, H, W) is flattened to C * H * W features).
        degree (`int`, *optional*, defaults to 3): kernel degree, >= 1.
        gamma (`float`, *optional*, defaults to 1.0): kernel scale, > 0.
        coef0 (`float`, *optional*, defaults to 1.0): kernel constant, >= 0 (0: homogeneous kernel).
        n_components (`int`, *optional*, defaults to 512): output dimension E of the feature map.
        n_components_up (`int`, *optional*): intermediate dimension D > E; defaults to 4E.
        up (`str`, *optional*, defaults to `"auto"`): "auto", "ctr", "ts" or "rm" (see `hf_eff.random_features.CraftMap`).
        down (`str`, *optional*, defaults to `"auto"`): "auto", "countsketch", "srht" or "gaussian".
        h01 (`bool`, *optional*, defaults to `True`): split an inhomogeneous kernel into its Maclaurin terms (up="auto"/"ctr"); exact degree-0/1 features (up="rm").
        seed (`int`, *optional*, defaults to 0): seeds the random map and the random code matrix.
        normalize (`str`, *optional*, defaults to `"l2"`):
            "l2" scales every input row to unit norm before the map (polynomial random features have variance
            growing with ||x||^(2 degree)); "none" feeds inputs as they are.
        code (`str`, *optional*, defaults to `"ovr"`): "ovr" (one-vs-rest) or "random" (dense random +-1 codes).
        code_size (`int`, *optional*): codeword length L for code="random"; defaults to ceil(10 log2 K).
        alpha (`float`, *optional*, defaults to 1e-3): ridge penalty.
        fit_intercept (`bool`, *optional*, defaults to `True`): learn an unpenalised bias per code bit.
        image_size (`list[int]`, *optional*):
            (H, W) the model was trained on, when its inputs are images; the pipeline resizes PIL images to it.
        num_channels (`int`, *optional*, defaults to 1): channels of image inputs (1: grayscale, 3: RGB).

    Example:

    ```python
    >>> from hf_eff import CraftMapsConfig, CraftMapsForClassification
    >>> config = CraftMapsConfig(num_features=64, n_components=256, num_labels=10)
    >>> model = CraftMapsForClassification(config)
    ```
    """

    model_type = "hf_eff_craftmaps"

    num_features: int = 64
    degree: int = 3
    gamma: float = 1.0
    coef0: float = 1.0
    n_components: int = 512
    n_components_up: int | None = None
    up: str = "auto"
    down: str = "auto"
    h01: bool = True
    seed: int = 0
    normalize: str = "l2"
    code: str = "ovr"
    code_size: int | None = None
    alpha: float = 1e-3
    fit_intercept: bool = True
    image_size: list[int] | tuple[int, ...] | None = None
    num_channels: int = 1

    def __post_init__(self, **kwargs):
        if self.image_size is not None:
            self.image_size = list(self.image_size)
        super().__post_init__(**kwargs)
        self.validate_craftmaps()

    def validate_craftmaps(self) -> None:
        """Check the values that the engine would otherwise reject later, with the config field's name."""
        from hf_eff.random_features.craftmaps import DOWN_PROJECTIONS, UP_PROJECTIONS
        from hf_eff.random_features.ridge import CODES

        for name in ("num_features", "degree", "n_components", "num_channels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if self.n_components_up is not None and self.n_components_up <= self.n_components:
            raise ValueError(
                f"n_components_up (D={self.n_components_up}) must be larger than n_components (E={self.n_components})"
            )
        if not self.gamma > 0:
            raise ValueError(f"gamma must be > 0, got {self.gamma}")
        if not self.coef0 >= 0:
            raise ValueError(f"coef0 must be >= 0, got {self.coef0}")
        if not self.alpha >= 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha}")
        choices = {"up": UP_PROJECTIONS, "down": DOWN_PROJECTIONS, "code": CODES, "normalize": ("l2", "none")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.image_size is not None:
            height, width = self.image_size
            if self.num_channels * height * width != self.num_features:
                raise ValueError(
                    f"num_channels * image_size = {self.num_channels} * {height} * {width} must equal "
                    f"num_features={self.num_features}"
                )


__all__ = ["CraftMapsConfig"]
