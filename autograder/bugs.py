"""The catalogue of known bugs: each must lose points on the tests it breaks.

name: (assignment, grade_id of the answer cell, text in the reference answer, the bug,
       tests that must fail because of it)
"""

BUGS = {
    "central-forward-difference": (
        "01_numerical_gradients", "central_difference",
        "return (f(x + h) - f(x - h)) / (2 * h)", "return (f(x + h) - f(x)) / h",
        {"test_central_difference", "test_central_difference_hidden"},
    ),
    "central-divides-by-h": (
        "01_numerical_gradients", "central_difference",
        "/ (2 * h)", "/ h",
        {"test_central_difference", "test_central_difference_hidden"},
    ),
    "numgrad-mutates-input": (
        "01_numerical_gradients", "numerical_gradient",
        "plus, minus = list(xs), list(xs)", "plus, minus = xs, list(xs)",
        {"test_numerical_gradient", "test_numerical_gradient_hidden"},
    ),
    "numgrad-ignores-h": (
        "01_numerical_gradients", "numerical_gradient",
        "    grads = []\n", "    h = 1e-5\n    grads = []\n",
        {"test_numerical_gradient_hidden"},
    ),
    "gradcheck-absolute-error": (
        "01_numerical_gradients", "gradient_check",
        "rel = abs(a - n) / scale if scale > 0 else 0.0", "rel = abs(a - n)",
        {"test_gradient_check", "test_gradient_check_hidden"},
    ),
    "gradcheck-pass-inverted": (
        "01_numerical_gradients", "gradient_check",
        "return worst, worst <= tol", "return worst, worst > tol",
        {"test_gradient_check", "test_gradient_check_hidden"},
    ),
    "add-assigns-grad": (
        "02_value_backward", "add",
        "self.grad += out.grad\n        other.grad += out.grad",
        "self.grad = out.grad\n        other.grad = out.grad",
        {"test_add", "test_add_hidden"},
    ),
    "mul-swapped-operands": (
        "02_value_backward", "mul",
        "self.grad += other.data * out.grad\n        other.grad += self.data * out.grad",
        "self.grad += self.data * out.grad\n        other.grad += other.data * out.grad",
        {"test_mul"},
    ),
    "mul-missing-out-grad": (
        "02_value_backward", "mul",
        "self.grad += other.data * out.grad\n        other.grad += self.data * out.grad",
        "self.grad += other.data\n        other.grad += self.data",
        {"test_mul_hidden"},
    ),
    "backward-not-reversed": (
        "02_value_backward", "backward",
        "for v in reversed(topo):", "for v in topo:",
        {"test_backward"},
    ),
    "backward-no-visited-set": (
        "02_value_backward", "backward",
        "        if v not in visited:\n            visited.add(v)\n            for child",
        "        if True:\n            for child",
        {"test_backward", "test_backward_hidden"},
    ),
    "backward-grad-not-seeded": (
        "02_value_backward", "backward",
        "    self.grad = 1.0\n", "",
        {"test_backward"},
    ),
    "rsub-wrong-order": (
        "02_value_backward", "rsub",
        "return other + (-self)", "return self - other",
        {"test_rsub"},
    ),
    "tanh-grad-uses-input": (
        "03_more_ops", "tanh",
        "self.grad += (1 - t ** 2) * out.grad", "self.grad += (1 - self.data ** 2) * out.grad",
        {"test_tanh", "test_tanh_hidden"},
    ),
    "tanh-assigns-grad": (
        "03_more_ops", "tanh",
        "self.grad += (1 - t ** 2) * out.grad", "self.grad = (1 - t ** 2) * out.grad",
        {"test_tanh_hidden"},
    ),
    "exp-grad-uses-input": (
        "03_more_ops", "exp",
        "self.grad += out.data * out.grad", "self.grad += self.data * out.grad",
        {"test_exp", "test_exp_hidden"},
    ),
    "pow-exponent-off-by-one": (
        "03_more_ops", "pow",
        "k * self.data ** (k - 1) * out.grad", "k * self.data ** k * out.grad",
        {"test_pow", "test_pow_hidden"},
    ),
    "pow-missing-out-grad": (
        "03_more_ops", "pow",
        "k * self.data ** (k - 1) * out.grad", "k * self.data ** (k - 1)",
        {"test_pow", "test_pow_hidden"},
    ),
    "relu-passes-negative-grad": (
        "03_more_ops", "relu",
        "self.grad += (out.data > 0) * out.grad", "self.grad += out.grad",
        {"test_relu", "test_relu_hidden"},
    ),
    "truediv-number-not-wrapped": (
        "03_more_ops", "truediv",
        "    other = other if isinstance(other, Value) else Value(other)\n", "",
        {"test_truediv", "test_truediv_hidden"},
    ),
    "rtruediv-wrong-order": (
        "03_more_ops", "rtruediv",
        "return Value(other) / self", "return self / other",
        {"test_rtruediv", "test_rtruediv_hidden"},
    ),
    "neuron-parameters-missing-bias": (
        "04_neuron", "neuron_parameters",
        "return self.w + [self.b]", "return self.w",
        {"test_neuron_parameters", "test_neuron_parameters_hidden"},
    ),
    "neuron-parameters-appends-to-w": (
        "04_neuron", "neuron_parameters",
        "return self.w + [self.b]", "self.w.append(self.b)\n    return self.w",
        {"test_neuron_parameters_hidden"},
    ),
    "neuron-ignores-nonlin": (
        "04_neuron", "neuron_call",
        "return act.tanh() if self.nonlin else act", "return act.tanh()",
        {"test_neuron_call", "test_neuron_call_hidden"},
    ),
    "neuron-missing-tanh": (
        "04_neuron", "neuron_call",
        "return act.tanh() if self.nonlin else act", "return act",
        {"test_neuron_call", "test_neuron_call_hidden"},
    ),
    "neuron-bias-left-out": (
        "04_neuron", "neuron_call",
        "for wi, xi in zip(self.w, x)), self.b)", "for wi, xi in zip(self.w, x)))",
        {"test_neuron_call", "test_neuron_call_hidden"},
    ),
    "neuron-one-weight-repeated": (
        "04_neuron", "neuron_init",
        "[Value(random.uniform(-1.0, 1.0)) for _ in range(nin)]", "[Value(random.uniform(-1.0, 1.0))] * nin",
        {"test_neuron_init", "test_neuron_init_hidden"},
    ),
    "neuron-weights-not-values": (
        "04_neuron", "neuron_init",
        "[Value(random.uniform(-1.0, 1.0)) for _ in range(nin)]", "[random.uniform(-1.0, 1.0) for _ in range(nin)]",
        {"test_neuron_init"},
    ),
    "neuron-weights-only-positive": (
        "04_neuron", "neuron_init",
        "[Value(random.uniform(-1.0, 1.0)) for _ in range(nin)]", "[Value(random.random()) for _ in range(nin)]",
        {"test_neuron_init_hidden"},
    ),
    "layer-one-neuron-repeated": (
        "05_mlp", "layer_init",
        "[Neuron(nin, **kwargs) for _ in range(nout)]", "[Neuron(nin, **kwargs)] * nout",
        {"test_layer_init", "test_layer_init_hidden"},
    ),
    "layer-drops-kwargs": (
        "05_mlp", "layer_init",
        "Neuron(nin, **kwargs)", "Neuron(nin)",
        {"test_layer_init", "test_layer_init_hidden"},
    ),
    "layer-list-for-single-output": (
        "05_mlp", "layer_call",
        "return outs[0] if len(outs) == 1 else outs", "return outs",
        {"test_layer_call", "test_layer_call_hidden"},
    ),
    "layer-parameters-nested": (
        "05_mlp", "layer_parameters",
        "return [p for neuron in self.neurons for p in neuron.parameters()]",
        "return [neuron.parameters() for neuron in self.neurons]",
        {"test_layer_parameters", "test_layer_parameters_hidden"},
    ),
    "mlp-last-layer-tanh": (
        "05_mlp", "mlp_init",
        "nonlin=i != last", "nonlin=True",
        {"test_mlp_init", "test_mlp_init_hidden"},
    ),
    "mlp-all-layers-linear": (
        "05_mlp", "mlp_init",
        "nonlin=i != last", "nonlin=False",
        {"test_mlp_init", "test_mlp_init_hidden"},
    ),
    "mlp-call-not-chained": (
        "05_mlp", "mlp_call",
        "    for layer in self.layers:\n        x = layer(x)\n    return x",
        "    for layer in self.layers:\n        out = layer(x)\n    return out",
        {"test_mlp_call", "test_mlp_call_hidden"},
    ),
    "zero-grad-compares-instead-of-assigning": (
        "05_mlp", "mlp_zero_grad",
        "p.grad = 0.0", "p.grad == 0.0",
        {"test_mlp_zero_grad", "test_mlp_zero_grad_hidden"},
    ),
    "zero-grad-first-layer-only": (
        "05_mlp", "mlp_zero_grad",
        "for p in self.parameters():", "for p in self.layers[0].parameters():",
        {"test_mlp_zero_grad_hidden"},
    ),
    "mse-not-averaged": (
        "06_training", "mse_loss",
        "return total / len(ys)", "return total",
        {"test_mse_loss", "test_mse_loss_hidden"},
    ),
    "mse-not-squared": (
        "06_training", "mse_loss",
        "(p - y) ** 2", "(p - y)",
        {"test_mse_loss", "test_mse_loss_hidden"},
    ),
    "update-wrong-sign": (
        "06_training", "train_step",
        "p.data -= lr * p.grad", "p.data += lr * p.grad",
        {"test_train_step", "test_train_step_hidden"},
    ),
    "train-step-no-zero-grad": (
        "06_training", "train_step",
        "    model.zero_grad()\n", "",
        {"test_train_step", "test_train_step_hidden"},
    ),
    "train-step-zeroes-after-backward": (
        "06_training", "train_step",
        "    model.zero_grad()\n    loss.backward()\n", "    loss.backward()\n    model.zero_grad()\n",
        {"test_train_step", "test_train_step_hidden"},
    ),
    "train-step-returns-value": (
        "06_training", "train_step",
        "return loss.data", "return loss",
        {"test_train_step"},
    ),
    "train-returns-last-loss": (
        "06_training", "train",
        "return losses", "return losses[-1]",
        {"test_train", "test_train_hidden"},
    ),
    "xor-too-few-steps": (
        "06_training", "xor_run",
        "steps=200", "steps=3",
        {"test_xor_run", "test_xor_run_hidden"},
    ),
    "sigmoid-derivative-uses-input": (
        "07_capstone", "sigmoid",
        "self.grad += s * (1.0 - s) * out.grad",
        "self.grad += x * (1.0 - x) * out.grad",
        {"test_sigmoid", "test_sigmoid_hidden"},
    ),
    "log-derivative-divides-by-output": (
        "07_capstone", "log",
        "self.grad += out.grad / self.data",
        "self.grad += out.grad / out.data",
        {"test_log", "test_log_hidden"},
    ),
    "softmax-without-max-shift": (
        "07_capstone", "softmax",
        "exps = [(z - m).exp() for z in logits]",
        "exps = [z.exp() for z in logits]",
        {"test_softmax", "test_softmax_hidden"},
    ),
    "cross-entropy-missing-minus": (
        "07_capstone", "cross_entropy",
        "return -softmax(logits)[target].log()",
        "return softmax(logits)[target].log()",
        {"test_cross_entropy", "test_cross_entropy_hidden"},
    ),
    "sgd-momentum-buffer-not-kept": (
        "07_capstone", "sgd_step",
        "self.buf[i] = self.momentum * self.buf[i] + p.grad\n        p.data -= self.lr * self.buf[i]",
        "b = self.momentum * self.buf[i] + p.grad\n        p.data -= self.lr * b",
        {"test_sgd_step", "test_sgd_step_hidden"},
    ),
    "sgd-momentum-dampened": (
        "07_capstone", "sgd_step",
        "self.momentum * self.buf[i] + p.grad",
        "self.momentum * self.buf[i] + (1 - self.momentum) * p.grad",
        {"test_sgd_step", "test_sgd_step_hidden"},
    ),
    "sgd-zero-grad-not-clearing": (
        "07_capstone", "sgd_zero_grad",
        "p.grad = 0.0",
        "grad = p.grad\n        grad = 0.0",
        {"test_sgd_zero_grad", "test_sgd_zero_grad_hidden"},
    ),
    "adam-without-bias-correction": (
        "07_capstone", "adam_step",
        "m_hat = self.m[i] / bias1\n        v_hat = self.v[i] / bias2",
        "m_hat = self.m[i]\n        v_hat = self.v[i]",
        {"test_adam_step", "test_adam_step_hidden"},
    ),
    "adam-zero-grad-not-clearing": (
        "07_capstone", "adam_zero_grad",
        "p.grad = 0.0",
        "grad = p.grad\n        grad = 0.0",
        {"test_adam_zero_grad", "test_adam_zero_grad_hidden"},
    ),
    "moons-labels-swapped": (
        "07_capstone", "make_moons",
        "y = np.concatenate([np.ones(n_upper), -np.ones(n_lower)])",
        "y = np.concatenate([-np.ones(n_upper), np.ones(n_lower)])",
        {"test_make_moons", "test_moons_trained_hidden"},
    ),
    "moons-not-shuffled": (
        "07_capstone", "make_moons",
        "return X[order], y[order]",
        "return X, y",
        {"test_make_moons"},
    ),
    "hinge-loss-sum-not-mean": (
        "07_capstone", "hinge_loss",
        "return sum(losses) * (1.0 / len(losses))",
        "return sum(losses)",
        {"test_hinge_loss", "test_hinge_loss_hidden"},
    ),
    "train-step-without-zero-grad": (
        "07_capstone", "train_step",
        "opt.zero_grad()\n    loss = hinge_loss",
        "loss = hinge_loss",
        {"test_train_step", "test_train_step_hidden"},
    ),
    "torch-grads-tanh-on-last-layer": (
        "07_capstone", "torch_grads",
        "        if k < len(model.layers) - 1:\n            h = torch.tanh(h)",
        "        h = torch.tanh(h)",
        {"test_torch_grads", "test_torch_grads_hidden"},
    ),
    "draw-graph-without-grad": (
        "07_capstone", "draw_graph",
        "| data {v.data:.4f} | grad {v.grad:.4f} }}",
        "| data {v.data:.4f} }}",
        {"test_draw_graph", "test_draw_graph_hidden"},
    ),
}
