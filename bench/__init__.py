"""Benchmarks. Each module ``bench/<name>.py`` defines ``main(argv: list[str]) -> int``.

Run one with ``python main.py bench <name>``; results land in ``bench/results/``.
"""
