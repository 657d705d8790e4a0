# Makes this directory a package, so its test_placement.py does not clash with
# tests/unit/plugins/module_utils/test_placement.py under pytest's default import mode.
