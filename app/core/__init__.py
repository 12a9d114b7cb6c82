"""The torch side of Layer Explorer.

Plain functions over plain request data: nothing here imports fastapi or keeps state that
assumes a single process, so every entry point can run inside a worker process.
"""
