import pytest
from datasets import Dataset
from spdf_testing import random_lm_dataset


@pytest.fixture
def lm_dataset() -> Dataset:
    return random_lm_dataset()
