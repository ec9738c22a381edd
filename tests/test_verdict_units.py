"""The trusted test runner's data channel, without a kernel (fast): the kernel-side agent and the runner's
decoder in one process, the relay replaced by a direct call."""

from __future__ import annotations

import base64
import io
import json
import pickle

import nbformat
import numpy as np
import pytest

from autograder import trusted_runner as runner
from autograder.repair import Reference, restore_grade_metadata
from autograder.verdict import agent_source


class DirectChannel:
    """Stands for the grader and the kernel: runs the agent's text in a namespace of its own."""

    def __init__(self, namespace: dict):
        self.namespace = namespace
        exec(compile(agent_source(), "kernel_side", "exec"), namespace)
        self.reply = None

    def send(self, message: dict) -> None:
        self.reply = {"ok": True, "answer": self.namespace["__ag__"](message["request"])}

    def receive(self) -> dict:
        return self.reply


@pytest.fixture
def kernel(monkeypatch):
    namespace: dict = {}
    monkeypatch.setattr(runner, "CHANNEL", DirectChannel(namespace))
    return namespace


def test_results_come_back_as_data(kernel):
    """Do arrays, NumPy scalars, tuples, dicts, non-finite floats and big ints keep their types and values?"""
    exec("import numpy as np\n"
         "def f(x):\n"
         "    return (x * 2, np.float32(1.5), {'k': [1, float('nan')], 3: None}, 2**70, 'text', True)", kernel)
    doubled, scalar, mapping, big, text, flag = runner.Proxy("f")(np.arange(3.0))
    assert isinstance(doubled, np.ndarray) and doubled.tolist() == [0.0, 2.0, 4.0]
    assert type(scalar) is np.float32 and scalar == 1.5
    assert mapping["k"][0] == 1 and np.isnan(mapping["k"][1]) and mapping[3] is None
    assert big == 2**70 and text == "text" and flag is True


def test_objects_stay_in_the_kernel_behind_handles(kernel):
    """Is a student's object a handle whose methods and attributes are reached through the kernel?"""
    exec("class Model:\n"
         "    scale = 3.0\n"
         "    def predict(self, x):\n"
         "        return x * self.scale\n"
         "def make():\n"
         "    return Model()", kernel)
    model = runner.Proxy("make")()
    assert isinstance(model, runner.Handle)
    assert model.scale == 3.0
    assert model.predict(np.ones(2)).tolist() == [3.0, 3.0]


def test_arguments_changed_in_the_kernel_are_changed_here(kernel):
    """Are in-place changes to arrays, dict entries and NumPy generators applied to the test's own objects, so
    that inputs_unchanged and "updates params in place" tests see them?"""
    exec("def mutate(x, params, rng):\n"
         "    x[0] += 1.0\n"
         "    params['W'] = params['W'] - 1.0\n"
         "    rng.random()\n", kernel)
    x, params, rng = np.zeros(3), {"W": np.ones(2)}, np.random.default_rng(0)
    original_w = params["W"]
    expected_next = np.random.default_rng(0)
    expected_next.random()
    assert runner.Proxy("mutate")(x, params, rng) is None
    assert x.tolist() == [1.0, 0.0, 0.0]
    assert params["W"].tolist() == [0.0, 0.0] and original_w.tolist() == [1.0, 1.0]
    assert rng.random() == expected_next.random()
    from dlcourse.testing import inputs_unchanged

    with pytest.raises(AssertionError, match="modified its argument x"):
        with inputs_unchanged(x=x):
            runner.Proxy("mutate")(x, {"W": np.ones(1)}, np.random.default_rng(1))


def test_an_exception_of_the_submission_keeps_its_type_not_its_message(kernel):
    exec("def f(x):\n    raise ValueError('SECRET ' * 50)\n"
         "class Mine(Exception):\n    pass\n"
         "def g():\n    raise Mine('SECRET')\n", kernel)
    with pytest.raises(ValueError) as raised:
        runner.Proxy("f")(1)
    assert "SECRET" not in str(raised.value) and "f raised ValueError" in str(raised.value)
    with pytest.raises(runner.SubmissionError, match="g raised Mine") as raised:
        runner.Proxy("g")()
    assert "SECRET" not in str(raised.value)


def test_an_answer_that_would_execute_code_is_refused(monkeypatch):
    """A forged answer holding a pickle (an object array in the npz, or a pickle instead of JSON) is not read."""
    class Forged:
        def __init__(self, answer):
            self.answer = answer

        def send(self, message):
            pass

        def receive(self):
            return {"ok": True, "answer": self.answer}

    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('pickle executed')",))

    buffer = io.BytesIO()
    np.save(buffer, np.array([Boom()], dtype=object), allow_pickle=True)
    npz = io.BytesIO()
    np.savez(npz, a0=np.array([Boom()], dtype=object))
    head = base64.b64encode(json.dumps({"status": "ok", "value": {"__nd__": 0}, "sync": []}).encode()).decode()
    for answer in (head + ":" + base64.b64encode(npz.getvalue()).decode(),
                   base64.b64encode(pickle.dumps(Boom())).decode() + ":"):
        monkeypatch.setattr(runner, "CHANNEL", Forged(answer))
        with pytest.raises(runner.SubmissionError, match="could not be read"):
            runner.Proxy("f")()


def test_test_cell_outcomes_follow_nbgrader(kernel):
    """An error is an error output, a number as last value is an execute_result (partial credit), and who raised
    the failing assertion is recorded (a course helper's message is the one the feedback may show)."""
    exec("def f(x):\n    return x + 1\n", kernel)
    namespace = {"f": runner.Proxy("f")}
    exec("from dlcourse.testing import assert_close", namespace)
    passed = runner._test({"source": "assert_close(f(1.0), 2.0)\n0.5", "grade_id": "t", "count": 1}, namespace)
    assert passed["verdict"] == {"by": "passed"}
    assert passed["outputs"][-1]["data"]["text/plain"] == "0.5"
    helper = runner._test({"source": "assert_close(f(1.0), 3.0, 'f of 1')", "grade_id": "t", "count": 2}, namespace)
    assert helper["verdict"]["by"] == "helper" and helper["verdict"]["message"].startswith("f of 1 is wrong")
    plain = runner._test({"source": "assert f(1.0) == 3.0, 'plain'", "grade_id": "t", "count": 3}, namespace)
    assert plain["verdict"]["by"] == "test" and "message" not in plain["verdict"]
    assert plain["outputs"][-1]["traceback"][0] == "Cell In[3], line 1"


def _reference() -> Reference:
    nb = nbformat.v4.new_notebook()
    answer = nbformat.v4.new_code_cell("def f():\n    return 1")
    answer.metadata["nbgrader"] = {"grade": False, "grade_id": "f", "locked": False, "schema_version": 3,
                                   "solution": True, "task": False}
    test = nbformat.v4.new_code_cell("# f: returns 1\nassert f() == 1")
    test.metadata["nbgrader"] = {"grade": True, "grade_id": "test_f", "locked": True, "points": 2,
                                 "schema_version": 3, "solution": False, "task": False}
    nb.cells = [answer, test]
    reference = Reference("x.ipynb", nb)
    reference.cells = {"f": answer, "test_f": test}
    reference.answers, reference.tests = {"f": {"f"}}, {"test_f": "f: returns 1"}
    return reference


def test_grade_metadata_is_repaired_against_the_released_notebook():
    """An unknown grade_id loses its metadata; a known cell with other metadata (locked answer, answer marked as
    a test, other points) gets the released cell's back; a well-formed notebook is left alone."""
    reference = _reference()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.from_dict(dict(c)) for c in reference.cells.values()]
    assert restore_grade_metadata(nb, reference) == []
    nb.cells[0].metadata["nbgrader"].update(locked=True)
    nb.cells[1].metadata["nbgrader"].update(points=20)
    extra = nbformat.v4.new_code_cell("x = 1")
    extra.metadata["nbgrader"] = {"grade": True, "grade_id": "bonus", "points": 5, "solution": False}
    nb.cells.append(extra)
    notes = restore_grade_metadata(nb, reference)
    assert len(notes) == 3 and "locked=True" in notes[0] and "points=20" in notes[1] and "'bonus'" in notes[2]
    assert nb.cells[0].metadata["nbgrader"]["locked"] is False and nb.cells[1].metadata["nbgrader"]["points"] == 2
    assert "nbgrader" not in nb.cells[2].metadata


def test_a_runner_stopped_after_the_time_limit_is_replaced():
    """A test cell whose trusted work runs past the limit times out alone: the next cell gets a fresh runner with
    the given cells replayed."""
    import asyncio

    from autograder.verdict import TrustedRunner

    async def scenario():
        runner_ = TrustedRunner(slot=None, kc=None, names=[])
        runner_.grace = 0.5
        await runner_.start()
        try:
            await runner_.given("imports", "import math\nBASE = 2", timeout=30)
            slow = nbformat.v4.new_code_cell("while True:\n    pass")
            outputs, verdict, stopped = await runner_.test(slow, 1, timeout=1)
            assert verdict == {"by": "timeout"} and stopped is None
            assert outputs[-1]["ename"] == "CellTimeoutError"
            quick = nbformat.v4.new_code_cell("assert math.sqrt(BASE ** 2) == 2")
            outputs, verdict, _ = await runner_.test(quick, 2, timeout=10)
            assert verdict == {"by": "passed"} and outputs == []
        finally:
            await runner_.close()

    asyncio.run(scenario())


def test_a_tests_callback_runs_in_the_kernel_rebuilt_from_its_source(kernel):
    """02-gradient-descent passes lambdas into the student's code: is each one rebuilt in the kernel from its text
    with the values of the names it uses (data, numpy, a closure, another student function), called there, and
    still an ordinary function in the test itself?"""
    exec("import numpy as np\n"
         "calls = []\n"
         "def descend(grad_f, x0, steps):\n"
         "    x = x0.copy()\n"
         "    for _ in range(steps):\n"
         "        calls.append(type(grad_f).__name__)\n"
         "        x = x - 0.1 * grad_f(x)\n"
         "    return x\n"
         "def double(v):\n"
         "    return 2 * v\n", kernel)
    namespace = {"descend": runner.Proxy("descend"), "double": runner.Proxy("double")}
    source = ("import numpy as np\n"
              "a, c = np.array([1.0, 4.0]), np.array([2.0, -1.0])\n"
              "def closure(scale):\n"
              "    return lambda x: scale * a * (x - c)\n"
              "x = descend(lambda x: a * (x - c), np.zeros(2), 3)\n"
              "expected = c + (1 - 0.1 * a) ** 3 * (0 - c)\n"
              "assert np.allclose(x, expected), x\n"
              "assert np.allclose(descend(closure(0.5), np.zeros(2), 1), 0.05 * a * c)\n"
              "assert np.allclose(descend(lambda x: double(x), np.ones(1), 1), [0.8])\n"
              "local = lambda v: v + 1\n"
              "assert local(1) == 2\n")
    result = runner._test({"source": source, "grade_id": "t", "count": 1}, namespace)
    assert result["verdict"] == {"by": "passed"}, result["outputs"]
    assert kernel["calls"] == ["function"] * 5


def test_a_callback_that_cannot_be_sent_is_refused_clearly(kernel):
    """A lambda using an object that is not data (here the test's own Checks) is an error of the test, named."""
    exec("def call(f):\n    return f(1)\n", kernel)
    namespace = {"call": runner.Proxy("call")}
    source = "import threading\nlock = threading.Lock()\ncall(lambda v: lock)\n"
    result = runner._test({"source": source, "grade_id": "t", "count": 1}, namespace)
    assert result["verdict"]["by"] == "error"
    assert "cannot pass" in result["outputs"][-1]["evalue"]


def test_given_data_is_never_sent_nor_changed_from_the_kernel(kernel, monkeypatch):
    """04-numpy-net's Fashion-MNIST arrays: a given cell that both sides run binds them; a call passes the kernel's
    own copy by name (the request stays small), the kernel's changes to it are not applied here, and the trusted
    copy is read-only."""
    monkeypatch.setattr(runner, "GIVEN_DATA", {})
    given = ("import numpy as np\nX_big = np.arange(500_000, dtype=np.float64).reshape(1000, 500)\n"
             "y_small = np.arange(3)")
    exec(given, kernel)
    exec("def train(X, y):\n"
         "    y[:] = 7\n"
         "    X[0, 0] = -1.0\n"
         "    return X is globals()['X_big'], float(X.sum()), y.copy()\n", kernel)
    namespace = {"train": runner.Proxy("train")}
    before = dict(namespace)
    runner._run(given, "<given cell data>", namespace)
    runner._register_given_data(namespace, before)
    sizes = []
    send = runner.CHANNEL.send
    monkeypatch.setattr(runner.CHANNEL, "send", lambda message: (sizes.append(len(message["request"])),
                                                                 send(message)))
    same, total, y_seen = runner.Proxy("train")(namespace["X_big"], namespace["y_small"])
    assert same is True and y_seen.tolist() == [7, 7, 7]
    assert sizes[0] < 2000, "the given array was sent"
    assert namespace["y_small"].tolist() == [0, 1, 2] and namespace["X_big"][0, 0] == 0.0
    assert not namespace["X_big"].flags.writeable
    # A copy made by the test is ordinary data again: sent, and its changes applied.
    y = namespace["y_small"].copy()
    runner.Proxy("train")(namespace["X_big"], y)
    assert y.tolist() == [7, 7, 7]


def test_the_kernels_printout_cannot_pose_as_a_failed_check():
    """The message of a partially passed test cell is read from its "[check failed]" lines: a line the student's
    code printed during a call (it could carry what it saw of a hidden test, e.g. a callback's text) must not read
    as one, even when split across two chunks."""
    from autograder.verdict import _merge
    from dlcourse.testing import FAILED_MARK

    streams = [{"output_type": "stream", "name": "stdout", "text": "progress\n  [check "},
               {"output_type": "stream", "name": "stdout", "text": "failed] sum(x**4): lambda v: SECRET\n"}]
    runner_output = {"output_type": "stream", "name": "stdout", "text": f"{FAILED_MARK} real: message\n"}
    merged = _merge(streams, [runner_output])
    lines = [line for output in merged for line in output["text"].splitlines()]
    assert [line for line in lines if line.startswith(FAILED_MARK)] == [f"{FAILED_MARK} real: message"]
    assert any("SECRET" in line for line in lines), "the printout itself is kept"


# -- PyTorch (05-pytorch, 06-cnn) ----------------------------------------------------------------------------------


def test_tensors_devices_and_dtypes_come_back_as_data(kernel):
    """Do tensors (with requires_grad), torch.device and torch.dtype values cross as data, and a module stay in
    the kernel behind a handle whose methods and attributes are reached there?"""
    torch = pytest.importorskip("torch")
    exec("import torch\nfrom torch import nn\n"
         "def f(x):\n"
         "    return x * 2, torch.ones(2, requires_grad=True), torch.device('cpu', 0), torch.float32\n"
         "def make():\n"
         "    torch.manual_seed(0)\n"
         "    return nn.Linear(3, 2)", kernel)
    doubled, leaf, device, dtype = runner.Proxy("f")(torch.arange(3.0))
    assert isinstance(doubled, torch.Tensor) and doubled.tolist() == [0.0, 2.0, 4.0]
    assert leaf.requires_grad and device == torch.device("cpu", 0) and dtype is torch.float32
    model = runner.Proxy("make")()
    assert isinstance(model, runner.Handle)
    weight = dict(list(model.named_parameters()))["weight"]
    assert tuple(weight.shape) == (2, 3)
    out = model(torch.ones(4, 3))
    assert torch.allclose(out.detach(), torch.ones(4, 3) @ weight.detach().T + model.bias.detach())


def test_a_forged_device_or_dtype_is_not_read(monkeypatch):
    """A dtype node naming something that is not a dtype is refused, not looked up and used."""
    pytest.importorskip("torch")

    class Forged:
        def __init__(self, answer):
            self.answer = answer

        def send(self, message):
            pass

        def receive(self):
            return {"ok": True, "answer": self.answer}

    for node in ({"__dtype__": "load"}, {"__dtype__": "Tensor"}, {"__device__": "nowhere:7"}):
        head = base64.b64encode(json.dumps({"status": "ok", "value": node, "sync": []}).encode()).decode()
        monkeypatch.setattr(runner, "CHANNEL", Forged(head + ":"))
        with pytest.raises(runner.SubmissionError, match="could not be read"):
            runner.Proxy("f")()


def test_course_helpers_run_in_the_kernel_on_the_students_objects(kernel):
    """In the runner, a helper of KERNEL_CALLS is called in the kernel (where the student's objects are):
    student_side keeps a model and its optimizer there, the student's function trains them there, and the test
    reads the parameters back; guards of the test's `with` block are entered there too."""
    torch = pytest.importorskip("torch")
    from torch import nn

    exec("import torch\n"
         "from dlcourse.torch_testing import student_side, describe_module\n"
         "from dlcourse.torch_utils import without_training_helpers, limited_threads\n"
         "def step(model, optimizer):\n"
         "    from dlcourse import torch_utils\n"
         "    step.helpers_off = torch_utils._disabled_reason is not None\n"
         "    optimizer.zero_grad()\n"
         "    model(torch.ones(1, 2)).sum().backward()\n"
         "    optimizer.step()\n", kernel)
    namespace = {"step": runner.Proxy("step")}
    exec("from dlcourse.torch_testing import student_side, describe_module\n"
         "from dlcourse.torch_utils import without_training_helpers, limited_threads", namespace)
    runner._install_guards(namespace)
    runner._install_kernel_calls(namespace)
    assert namespace["student_side"].__module__ == runner.__name__   # replaced by a call to the kernel
    model = nn.Linear(2, 1)
    reference = {name: p.detach().clone() for name, p in model.named_parameters()}
    mine, optimizer = namespace["student_side"]((model, torch.optim.SGD(model.parameters(), lr=0.5)))
    assert isinstance(mine, runner.Handle) and isinstance(optimizer, runner.Handle)
    with namespace["without_training_helpers"]():
        namespace["step"](mine, optimizer)
    assert kernel["step"].helpers_off, "the guard of the test's with block was not entered in the kernel"
    trained = dict(list(mine.named_parameters()))
    assert torch.allclose(trained["bias"], reference["bias"] - 0.5)
    assert torch.allclose(trained["weight"], reference["weight"] - 0.5)
    assert namespace["describe_module"](mine)["n_parameters"] == 3


def test_codec_imports_only_what_the_kernel_has():
    """Does the data format's module (whose text runs in the student's kernel) import only the standard library and
    NumPy at module level, and torch only inside functions?"""
    import ast
    import sys

    from autograder.verdict import CODEC

    tree = ast.parse(CODEC.read_text(encoding="utf-8"))
    top = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            top.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            top.add((node.module or "").split(".")[0])
    assert top and all(name in sys.stdlib_module_names or name == "numpy" for name in top), top
    inner = {alias.name for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
             for alias in node.names} - top
    assert inner <= {"torch"}, inner


def test_str_literal_reads_back_every_repr_and_evaluates_nothing():
    """Does verdict.str_literal (the kernel's answers, read without the ast module, which CPython 3.11 cannot use
    from two threads at once) give back every string from its repr, and refuse what is not one string literal?"""
    import random

    from autograder.verdict import str_literal

    rng = random.Random(0)
    samples = ["", "it's", 'say "hi"', "both ' and \"", "back\\slash", "\\u20ac as text", "é€𝄞", "\x00\x1f\x7f\x80",
               "line\nbreak\ttab\r", "\\", "\\'"]
    for _ in range(2000):
        samples.append("".join(chr(rng.choice([rng.randrange(0x80), rng.randrange(0x80, 0xD800),
                                               rng.randrange(0x10000, 0x110000), 0x5C, 0x27, 0x22]))
                               for _ in range(rng.randrange(20))))
    assert [s for s in samples if str_literal(repr(s)) != s] == []
    for text in ["abc", "'unterminated", "'", "42", "b'bytes'", "__import__('os')", "'a'b'", "'a' + 'b'",
                 "'escaped end\\'", "\"x\"y\""]:
        with pytest.raises(ValueError):
            str_literal(text)
