# Saves your work as a package, micrograd/, next to this notebook: engine.py holds `class Value`,
# nn.py the network, optim.py the optimizers. Each method goes in exactly as you wrote it, inside
# its class; a function of your own that a method calls is kept too. In Colab the package is also
# copied to your Google Drive, where the next notebook finds it.
import dis
import inspect
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import types
import zipfile

PACKAGE = "micrograd"
DRIVE_ROOT = os.environ.get("MICROGRAD_DRIVE_ROOT", "/content/drive")  # where Colab mounts Google Drive
DRIVE_FOLDER = os.path.join(DRIVE_ROOT, "MyDrive", "micrograd-course")
DOCSTRINGS = {
    "engine": "A scalar that remembers how it was computed, and backpropagation through it.",
    "nn": "Neurons, layers and multi-layer perceptrons built from Values.",
    "optim": "Optimizers that update a list of Value parameters from their gradients.",
}


def _indent(text, prefix="    "):
    return textwrap.indent(text, prefix, lambda line: line.strip() != "")


def _globals_read(code):
    """The global names that a function's code (and every function nested in it) reads."""
    names = {i.argval for i in dis.get_instructions(code) if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _globals_read(const)
    return names


def _function_source(fn, where):
    if fn.__name__ == "<lambda>":
        raise ValueError(f"{where} is a lambda: write it with `def` so that it can be saved")
    return textwrap.dedent(inspect.getsource(fn)).rstrip() + "\n"


def _class_source(cls):
    """`class Name(Base):` with its docstring, then every method, each as written."""
    bases = [b.__name__ for b in cls.__bases__ if b is not object]
    parts = [f"class {cls.__name__}{'(' + ', '.join(bases) + ')' if bases else ''}:\n"]
    if cls.__doc__:
        parts.append(_indent(f'"""{cls.__doc__}"""\n'))
    written: dict = {}  # function -> the name it was first written under
    for name, member in vars(cls).items():
        if not inspect.isfunction(member):
            continue
        if member in written:
            parts.append(f"\n    {name} = {written[member]}\n")
            continue
        parts.append("\n" + _indent(_function_source(member, f"{cls.__name__}.{name}")))
        written[member] = member.__name__
        if member.__name__ != name:  # written as `def sgd_step(self)`, attached as SGD.step
            parts.append(f"    {name} = {member.__name__}\n")
    return "".join(parts), list(written)


def _module_source(module, members, home, saved):
    """The text of micrograd/<module>.py: imports, your helper functions, then `members`.
    `home` maps each saved name to its module; `saved` holds the ids of every saved function."""
    bodies, functions = [], []
    for member in members:
        if inspect.isclass(member):
            text, methods = _class_source(member)
            functions += methods
        else:
            text = _function_source(member, member.__name__)
            functions.append(member)
        bodies.append(text)
    imports, helpers, seen = set(), [], set(saved)
    while functions:
        fn = functions.pop()
        for name in sorted(_globals_read(fn.__code__)):
            value = fn.__globals__.get(name)
            if isinstance(value, types.ModuleType):
                top = value.__name__
                imports.add(f"import {top}" if name == top else f"import {top} as {name}")
            elif name in home and home[name] != module:
                imports.add(f"from {PACKAGE}.{home[name]} import {name}")
            elif inspect.isfunction(value) and value.__module__ == fn.__module__ and id(value) not in seen:
                seen.add(id(value))
                helpers.append(_function_source(value, name))
                functions.append(value)
    header = f'"""{DOCSTRINGS.get(module, module)} Written in the micrograd course."""'
    plain = "\n".join(sorted(i for i in imports if i.startswith("import")))
    local = "\n".join(sorted(i for i in imports if i.startswith("from")))  # after the standard library
    head = "\n\n".join(s for s in (header, plain, local) if s)
    return "\n\n\n".join([head, *(s.rstrip("\n") for s in helpers[::-1] + bodies)]) + "\n"


def _check_imports(folder, modules):
    """Import the new package in a fresh Python, so that a problem shows here, not in the next notebook."""
    names = ", ".join(f"{PACKAGE}.{m}" for m in modules)
    run = subprocess.run([sys.executable, "-c", f"import {names}"], cwd=folder, capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"the saved package does not import:\n{run.stderr.strip().splitlines()[-1]}")


def _to_drive():
    """Copy the package to Google Drive in Colab; return where, or None outside Colab or if Drive is refused."""
    try:
        from google.colab import drive
    except ImportError:
        return None
    try:
        drive.mount(DRIVE_ROOT)
        target = os.path.join(DRIVE_FOLDER, PACKAGE)
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(PACKAGE, target)
        return target
    except Exception as error:  # refused, offline, or a full Drive: the zip below still keeps the work
        print(f"Google Drive is not available ({type(error).__name__}): download the zip instead.")
        return None


def _zip(path):
    with zipfile.ZipFile(path, "w") as z:
        for root, _, names in sorted(os.walk(PACKAGE)):
            for name in sorted(names):
                if name.endswith(".py"):
                    z.write(os.path.join(root, name))


def save_micrograd(**modules):
    """save_micrograd(engine=[Value], nn=[Module, Neuron, ...]): write micrograd/<module>.py for
    each keyword, holding the classes and functions listed, then check that it imports."""
    home = {member.__name__: module for module, members in modules.items() for member in members}
    listed = [member for members in modules.values() for member in members]
    saved = {id(f) for m in listed for f in (vars(m).values() if inspect.isclass(m) else [m])}
    sources = {module: _module_source(module, members, home, saved) for module, members in modules.items()}
    sources["__init__"] = f'"""micrograd, written in the micrograd course."""\n\nfrom {PACKAGE}.engine import Value\n'
    for module, text in sources.items():
        compile(text, f"{PACKAGE}/{module}.py", "exec")  # a syntax error stops here
    with tempfile.TemporaryDirectory() as tmp:
        os.mkdir(os.path.join(tmp, PACKAGE))
        for module, text in sources.items():
            with open(os.path.join(tmp, PACKAGE, f"{module}.py"), "w") as f:
                f.write(text)
        if os.environ.get("MICROGRAD_GRADING") != "1":
            _check_imports(tmp, modules)
        shutil.rmtree(PACKAGE, ignore_errors=True)
        shutil.copytree(os.path.join(tmp, PACKAGE), PACKAGE)
    written = ", ".join(f"{PACKAGE}/{m}.py" for m in sources if m != "__init__")
    print(f"Saved {written} in {os.getcwd()}.")
    if os.environ.get("MICROGRAD_GRADING") == "1":
        return
    drive_copy = _to_drive()
    if drive_copy:
        print(f"Copied to your Google Drive: {drive_copy}. The next notebook loads it from there.")
    elif "google.colab" in sys.modules:
        _zip(f"{PACKAGE}.zip")
        from google.colab import files

        files.download(f"{PACKAGE}.zip")
        print(f"Downloading {PACKAGE}.zip: keep it, and upload it when the next notebook asks for it.")


# ---- end of the course's save cell ----
