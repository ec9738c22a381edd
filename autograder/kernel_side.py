"""The grader's agent inside the student's kernel: calls the student's objects and answers with data only.

This file is never imported by the grader. Its text is executed once in every kernel that the trusted test
runner grades (:mod:`autograder.verdict`, :func:`~autograder.verdict.agent_source`), before any cell of the
submission, and defines ``__ag__`` there. The text of :mod:`autograder.codec` comes ahead of it as the string
``__ag_codec_source``, which the agent executes as a module of its own (so the kernel's namespace gets ``__ag__``
only).

``__ag__(request)`` takes a base64 pickle built by the trusted runner (the kernel is untrusted anyway: it may
unpickle what the grader sends), performs one operation (call an answer's function, read an attribute, index a
handle) and returns a string ``"<base64 JSON>:<base64 npz>"`` in the format of :mod:`autograder.codec`: a JSON
tree plus NumPy arrays saved with ``allow_pickle=False``. Reading it executes nothing. Objects that are not data
(a student's class instance) stay here behind numbered handles. Arguments the call mutated (arrays, lists, dicts,
NumPy generators) are sent back so that the trusted side can apply the same changes to its own copies.

Everything here runs in the student's process: a submission can replace or break it. That can only make its own
calls fail or return other values, which the trusted side then checks like any other result.
"""


def __ag_install(codec_source):
    import base64
    import builtins
    import contextlib
    import importlib
    import io
    import pickle
    import sys
    import types

    import numpy

    namespace = globals()
    handles = {}
    codec = types.ModuleType("autograder.codec")
    exec(compile(codec_source, "<the grader's codec>", "exec"), codec.__dict__)

    def keep(obj):
        key = len(handles) + 1
        handles[key] = obj
        return key

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

    def reseed(generator, value):
        # A seed the test set in the trusted runner (trusted_runner, "Seeds"), set here before the call. A module
        # this kernel has not imported has drawn nothing: it is left alone (and never imported here).
        module = sys.modules.get({"torch": "torch", "numpy": "numpy.random", "random": "random"}.get(generator, ""))
        try:
            if generator == "torch":
                module.manual_seed(value)
            elif module is not None:
                module.seed(value)
        except Exception:   # the submission broke its own generator: only its own results can change
            pass

    def agent(request):
        given.clear()
        message = Unpickler(io.BytesIO(base64.b64decode(request))).load()
        for generator, value in message.get("seeds", ()):
            reseed(generator, value)
        op = message["op"]
        if op == "release":
            handles.pop(message["handle"], None)
            return codec.Encoder(keep).dump({"status": "ok", "value": None, "sync": []})
        kind, key = message["target"]
        if kind == "h":
            target = handles[key]
        elif key in namespace:
            target = namespace[key]
        else:
            target = None
        args, kwargs = message.get("args", ()), message.get("kwargs", {})
        received = []
        codec.walk([*args, *kwargs.values()], received, set(), lambda obj: id(obj) in given)
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
        encoder = codec.Encoder(keep, received)
        for index, (obj, old) in enumerate(zip(received, before)):
            if changed(obj, old):
                answer["sync"].append([index, encoder(state(obj), top=True)])
        answer["value"] = encoder(value, top=True) if answer["status"] == "ok" else None
        return encoder.dump(answer)

    return agent


__ag__ = __ag_install(__ag_codec_source)  # noqa: F821 - defined ahead of this text by verdict.agent_source
del __ag_install, __ag_codec_source  # noqa: F821
