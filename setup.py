"""What pyproject.toml cannot say: the package list includes ``hf_eff.model_cards``, whose files live in the folder
``model_cards/`` at the repository root (the one source of the card templates), not under ``hf_eff/``."""

from setuptools import find_packages, setup


setup(
    packages=[*find_packages(include=["hf_eff", "hf_eff.*"]), "hf_eff.model_cards"],
    package_dir={"hf_eff.model_cards": "model_cards"},
)
