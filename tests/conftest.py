"""pytest puts this folder on sys.path (rootdir conftest, no __init__.py), so test modules in
tests/*/ can import tests/testlib.py."""
