"""Guess the number: a second, small task family, built exactly as CONTRIBUTING.md's "Add a task family" says.

The agent finds a hidden whole number in a range with one tool, ``guess(n)``
("higher", "lower" or "correct"), and ends with ``finish()``. Small as it is,
it separates the runtimes: a bisection that keeps its bounds in variables
needs the persistent interpreter; in the stateless one it must print them
and enter them again.
"""
