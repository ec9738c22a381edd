"""numerical_gradient calls the course's helper instead of computing the differences itself."""


def numerical_gradient(f, x, h=1e-5):
    from dlcourse.gradcheck import finite_difference_gradient

    return finite_difference_gradient(f, np.array(x, dtype=np.float64), h)
