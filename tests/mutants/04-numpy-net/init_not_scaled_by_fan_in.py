"""init_params draws weights with standard deviation 0.01 instead of sqrt(2 / fan_in)."""


def init_params(layer_sizes, seed=0):
    rng = np.random.default_rng(seed)
    params = {}
    for k, (fan_in, fan_out) in enumerate(zip(layer_sizes[:-1], layer_sizes[1:]), start=1):
        params[f"W{k}"] = rng.standard_normal((fan_in, fan_out)) * 0.01
        params[f"b{k}"] = np.zeros(fan_out)
    return params
