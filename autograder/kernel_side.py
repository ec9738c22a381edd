"""The grader's agent inside the student's kernel: calls the student's objects and answers with data only.

This file is never imported by the grader. Its text is executed once in every kernel that the trusted test
runner grades (:mod:`autograder.verdict`), before any cell of the submission, and defines ``__ag__`` there.

``__ag__(request)`` takes a base64 pickle built by the trusted runner (the kernel is untrusted anyway: it may
unpickle what the grader sends), performs one operation (call an answer's function, read an attribute, index a
handle) and returns a string ``"<base64 JSON>:<base64 npz>"``: a JSON tree plus NumPy arrays saved with
``allow_pickle=False``. Reading it executes nothing. Objects that are not data (a student's class instance)
stay here behind numbered handles. Arguments the call mutated (arrays, lists, dicts, NumPy generators) are sent
back so that the trusted side can apply the same changes to its own copies.

Everything here runs in the student's process: a submission can replace or break it. That can only make its own
calls fail or return other values, which the trusted side then checks like any other result.
"""


def __ag_install():
    import base64
    import builtins
    import contextlib
    import importlib
    import io
    import json
    import math
    import pickle
    import sys

    import numpy

    namespace = globals()
    handles = {}
    limit = 64 * 2**20           # bytes of arrays in one answer
    max_items = 100_000          # JSON nodes in one answer

    class Unpickler(pickle.Unpickler):
        def persistent_load(self, pid):
            kind, key = pid[0], pid[1]
            if kind in ("f", "g", "m"):
                return callback_or_given(pid)
            if kind == "h":
                return handles[key]
            if kind == "n":
                if key in namespace:
                    return namespace[key]
                raise NameError(f"name {key!r} is not defined")
            raise pickle.UnpicklingError("unknown persistent id")

    # A test's callback (a lambda rebuilt from its source text with the values it uses), the kernel's own copy of
    # an array a given cell bound (never sent, never synced back), a module by name.
    given = set()

    def callback_or_given(pid):
        kind, key = pid[0], pid[1]
        if kind == "m":
            return importlib.import_module(key)
        if kind == "g":
            if key not in namespace:
                raise NameError(f"name {key!r} is not defined")
            value = namespace[key]
            given.add(id(value))
            return value
        space = {"__builtins__": builtins, **pid[2]}
        return eval(compile(f"(\n{key}\n)", "<a test's function>", "eval"), space)

    def is_tensor(obj):
        torch = sys.modules.get("torch")
        return torch is not None and isinstance(obj, torch.Tensor)

    def is_torch_constant(obj):
        torch = sys.modules.get("torch")
        return torch is not None and type(obj) in (torch.device, torch.dtype)

    def mutable(obj):
        return isinstance(obj, (numpy.ndarray, list, dict, numpy.random.Generator))

    def walk(obj, found, seen):
        if id(obj) in seen or id(obj) in given:
            return
        if isinstance(obj, (list, tuple, dict)) or mutable(obj):
            seen.add(id(obj))
        if mutable(obj):
            found.append(obj)
        if isinstance(obj, (list, tuple)):
            for item in obj:
                walk(item, found, seen)
        elif isinstance(obj, dict):
            for item in obj.values():
                walk(item, found, seen)

    class Encoder:
        def __init__(self, refs=()):
            self.arrays = []
            self.size = 0
            self.items = 0
            self.refs = {id(o): i for i, o in enumerate(refs)}

        def array(self, value):
            value = numpy.array(value, copy=True, order="C")
            self.size += value.nbytes
            if self.size > limit:
                raise ValueError("the result is too large to be graded")
            self.arrays.append(value)
            return len(self.arrays) - 1

        def handle(self, obj):
            key = len(handles) + 1
            handles[key] = obj
            return {"__handle__": key, "type": type(obj).__name__[:80]}

        def __call__(self, obj, depth=0, top=False):
            self.items += 1
            if self.items > max_items or depth > 50:
                raise ValueError("the result is too deeply nested or too long to be graded")
            if not top and id(obj) in self.refs:
                return {"__ref__": self.refs[id(obj)]}
            if obj is None or isinstance(obj, (bool, str)) and type(obj) in (bool, str):
                return obj
            if type(obj) is int:
                return obj if abs(obj) < 2**53 else {"__int__": str(obj)}
            if type(obj) is float:
                return obj if math.isfinite(obj) else {"__float__": repr(obj)}
            if isinstance(obj, numpy.generic) and not isinstance(obj, numpy.object_):
                return {"__np__": self.array(obj)}
            if type(obj) is numpy.ndarray:
                if obj.dtype.hasobject:
                    return self.handle(obj)
                return {"__nd__": self.array(obj)}
            if is_tensor(obj):
                try:
                    data = obj.detach().cpu().numpy()
                except Exception:   # bfloat16 and other types NumPy lacks
                    return self.handle(obj)
                return {"__torch__": self.array(data), "requires_grad": bool(obj.requires_grad)}
            if is_torch_constant(obj):   # torch.device, torch.dtype: by name
                torch = sys.modules["torch"]
                if isinstance(obj, torch.device):
                    return {"__device__": str(obj)}
                return {"__dtype__": str(obj).rpartition(".")[2]}
            if type(obj) is tuple:
                return {"__tuple__": [self(x, depth + 1) for x in obj]}
            if type(obj) is list:
                return [self(x, depth + 1) for x in obj]
            if type(obj) is dict:
                return {"__dict__": [[self(k, depth + 1), self(v, depth + 1)] for k, v in obj.items()]}
            return self.handle(obj)

        def dump(self, tree):
            text = json.dumps(tree, allow_nan=False)
            buffer = io.BytesIO()
            if self.arrays:
                numpy.savez(buffer, **{f"a{i}": a for i, a in enumerate(self.arrays)})
            return base64.b64encode(text.encode()).decode() + ":" + base64.b64encode(buffer.getvalue()).decode()

    def snapshot(obj):
        if isinstance(obj, numpy.ndarray):
            return obj.copy()
        if isinstance(obj, list):
            return [id(x) for x in obj]
        if isinstance(obj, dict):
            return [(k, id(v)) for k, v in obj.items()]
        return obj.bit_generator.state

    def changed(obj, before):
        if isinstance(obj, numpy.ndarray):
            return obj.shape != before.shape or obj.dtype != before.dtype or not (
                (obj == before) | ((obj != obj) & (before != before))).all()
        return snapshot(obj) != before

    def state(obj):
        if isinstance(obj, numpy.random.Generator):
            return obj.bit_generator.state
        return obj

    def builtin_base(error):
        for cls in type(error).__mro__:
            if getattr(builtins, cls.__name__, None) is cls:
                return cls.__name__
        return "Exception"

    def agent(request):
        given.clear()
        message = Unpickler(io.BytesIO(base64.b64decode(request))).load()
        op = message["op"]
        if op == "release":
            handles.pop(message["handle"], None)
            return Encoder().dump({"status": "ok", "value": None, "sync": []})
        kind, key = message["target"]
        if kind == "h":
            target = handles[key]
        elif key in namespace:
            target = namespace[key]
        else:
            target = None
        args, kwargs = message.get("args", ()), message.get("kwargs", {})
        received = []
        walk([*args, *kwargs.values()], received, set())
        before = [snapshot(o) for o in received]
        answer = {"status": "ok", "value": None, "sync": []}
        try:
            with contextlib.ExitStack() as stack:
                # The test's np.errstate block, and the course's kernel-side guards (without_shortcuts()) it is in.
                if message.get("errstate"):
                    stack.enter_context(numpy.errstate(**message["errstate"]))
                for guard in message.get("guards", []):
                    stack.enter_context(namespace[guard]())
                if kind == "n" and key not in namespace:
                    raise NameError(f"name {key!r} is not defined")
                if op == "call":
                    value = target(*args, **kwargs)
                elif op == "getattr":
                    value = getattr(target, message["name"])
                elif op == "getitem":
                    value = target[args[0]]
                elif op == "len":
                    value = len(target)
                elif op == "list":
                    value = list(target)
                else:
                    raise ValueError(f"unknown operation {op!r}")
        except Exception as error:
            name = "".join(c for c in type(error).__name__ if c.isalnum() or c == "_")[:60] or "Exception"
            answer = {"status": "raised", "value": None, "sync": [],
                      "error": {"name": name, "builtin": builtin_base(error)}}
            value = None
        encoder = Encoder(received)
        for index, (obj, old) in enumerate(zip(received, before)):
            if changed(obj, old):
                answer["sync"].append([index, encoder(state(obj), top=True)])
        answer["value"] = encoder(value, top=True) if answer["status"] == "ok" else None
        return encoder.dump(answer)

    return agent


__ag__ = __ag_install()
del __ag_install
