"""Being a conftest puts this folder on ``sys.path`` (pytest's default import mode), so that its tests can import
``recipes``, the module the crash-resume harness also loads by path in fresh processes."""
