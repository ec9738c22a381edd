"""dlcourse: shared helpers of the course "Deep Learning from the Ground Up".

Modules:
    data       Fashion-MNIST and MNIST, offline first, verified.
    gradcheck  centred finite differences and gradient checks with diagnoses.
    plotting   the course's figure style, learning curves, image grids, confusion matrices.
    widgets    interactive figures: live ipywidgets in Jupyter/Colab, static and interactive on the website.
    testing    assertions used by the exercises' test cells.
    course     repository settings from _config.yml; Colab and JupyterHub links.

This package holds no solution to any exercise.
"""

__version__ = "0.1.0"
