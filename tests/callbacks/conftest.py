"""Being a conftest puts this folder on ``sys.path`` (pytest's default import mode), so that the tests in its
subfolders can import ``callback_testing``."""
