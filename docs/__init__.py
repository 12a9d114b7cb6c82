"""The project's documentation and the tools that make its pictures (``python -m docs.pictures``).

A package only so that ``python -m docs.pictures`` runs from the repository root; the wheel holds
``app`` alone (pyproject.toml: ``packages = ["app"]``), so nothing here is installed.
"""
