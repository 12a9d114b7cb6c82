"""python -m docs.pictures [--fast] [--out DIR] [--only NAME ...]: regenerate docs/images."""

from docs.pictures import main

# The app's worker processes re-import the main module (multiprocessing's spawn/forkserver): only the
# script itself runs main().
if __name__ == "__main__":
    raise SystemExit(main())
