"""Answer checks for the book's exercises, one module per chapter (``ch01.py``, ``ch02.py``, ...).

Every module here is imported the first time `mlteach.check` is called; each registers its
chapter's checks with `mlteach.exercises.register`. See the docstring of `mlteach.exercises`
for how to write one and ``notebooks/README.md`` for the exercise conventions.
"""
