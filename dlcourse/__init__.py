"""dlcourse: shared helpers of the course "Deep Learning from the Ground Up".

Modules:
    data         Fashion-MNIST and MNIST, offline first, verified.
    gradcheck    centred finite differences and gradient checks with diagnoses.
    plotting     the course's figure style, learning curves, image grids, confusion matrices.
    optim_viz    loss surfaces, gradient fields and optimisation trajectories.
    nnviz        the backprop step-through figure, a stdout progress bar, guards used by test cells.
    torch_utils  device, CPU training budget, data loaders over the course's arrays, checkpoints (imports torch).
    widgets      interactive figures: live ipywidgets in Jupyter/Colab, static and interactive on the website.
    glue         numbers a chapter's text quotes, filled in from its computation when the book is built.
    testing      assertions used by the exercises' test cells.
    submission   the pre-submission check run by the last cell of every exercise.
    course       repository settings from _config.yml; Colab and JupyterHub links; the Colab setup cell.
    simulated_gpu  a GPU simulated on the CPU, to find device bugs in CI (a development tool; imports torch).

Importing the package imports none of them (and never torch). This package holds no solution to any exercise.
"""

__version__ = "0.1.0"
