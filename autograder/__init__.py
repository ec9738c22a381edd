"""Instructor tooling of the course: release student notebooks and grade submissions with nbgrader.

Run ``python -m autograder --help`` from the repository root.
"""
