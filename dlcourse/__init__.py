"""dlcourse: shared helpers of the course "Deep Learning from the Ground Up".

The chapter API (what the chapters and students' own code use):
    data         Fashion-MNIST and MNIST, offline first, verified.
    gradcheck    centred finite differences and gradient checks with diagnoses.
    plotting     the course's figure style, learning curves, image grids, confusion matrices.
    optim_viz    loss surfaces, gradient fields and optimisation trajectories.
    widgets      interactive figures: live ipywidgets in Jupyter/Colab, static and interactive on the website.
    nnviz        the backprop step-through figure.
    progress     a progress bar that never writes to stderr.
    torch_utils  training: device, CPU training budget, data loaders, fit, checkpoints (imports torch).
    glue         numbers a chapter's text quotes, filled in from its computation when the book is built.
    simulated_gpu  a GPU simulated on the CPU, to find device bugs in CI (a development tool; imports torch).

The test-cell API (what the exercises' graded test cells use), all importable from ``dlcourse.testing``:
    testing           assertions and soft checks; lends every other helper a test cell uses (its __all__).
    testing_guards    guards that keep a graded function honest (NumPy only, no shortcuts, one thread).
    testing_fixtures  small data made for test cells (imports torch).
    torch_testing     PyTorch oracles, recorders and timings for test cells (imports torch).
    heldout           the capstone's held-out test set.
    submission        the pre-submission check run by the last cell of every exercise (standard library only).

Instructor tooling (links, setup cells, grading) lives in ``autograder/``, which is not part of this package.
The website's page "Helper reference" (``book/api.md``, generated) lists every helper and the chapters that use it.

Importing the package imports none of them (and never torch). This package holds no solution to any exercise.
"""

__version__ = "0.1.0"
