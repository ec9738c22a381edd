"""init_params initialises the weights with zeros: every hidden unit computes the same thing (symmetry) and
the ReLU network gets no gradient for its first layer."""


def init_params(layer_sizes, seed=0):
    params = {}
    for k, (fan_in, fan_out) in enumerate(zip(layer_sizes[:-1], layer_sizes[1:]), start=1):
        params[f"W{k}"] = np.zeros((fan_in, fan_out))
        params[f"b{k}"] = np.zeros(fan_out)
    return params
