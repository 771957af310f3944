"""Helpers the tests share: stand-ins at the seams, real servers, process runners. Imported by tests, never from conftest."""
