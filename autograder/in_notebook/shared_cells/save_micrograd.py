# Saves your work as a package, micrograd/, next to this notebook: engine.py holds `class Value`,
# nn.py the network, optim.py the optimizers. Each method goes in exactly as you wrote it, inside
# its class; a function of your own that a method calls is kept too. A save rewrites only what
# this notebook writes (OWNERS below) and keeps everything else already saved, so running an
# earlier notebook again never loses later work; a saved definition it replaces by a different
# one is first copied to micrograd.bak/. In Colab the package is also saved to your Google Drive,
# the same way, where the next notebook finds it.
import ast
import dis
import inspect
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import types
import zipfile

PACKAGE = "micrograd"
BACKUPS = f"{PACKAGE}.bak"
BACKUPS_KEPT = 5
DRIVE_ROOT = os.environ.get("MICROGRAD_DRIVE_ROOT", "/content/drive")  # where Colab mounts Google Drive
DRIVE_FOLDER = os.path.join(DRIVE_ROOT, "MyDrive", "micrograd-course")
DOCSTRINGS = {
    "engine": "A scalar that remembers how it was computed, and backpropagation through it.",
    "nn": "Neurons, layers and multi-layer perceptrons built from Values.",
    "optim": "Optimizers that update a list of Value parameters from their gradients.",
}
# Which notebook writes which definitions, by file. A class named alone comes with every method
# that no other line names; a definition no line names (a helper of your own) belongs to the
# notebook that saves it.
OWNERS = {
    "exercise 2": {"engine": ["Value"]},
    "exercise 3": {
        "engine": ["Value.tanh", "Value.exp", "Value.__pow__", "Value.relu", "Value.__truediv__", "Value.__rtruediv__"]
    },
    "exercise 4": {"nn": ["Module", "Neuron"]},
    "exercise 5": {"nn": ["Layer", "MLP", "Module.zero_grad"]},
    "the capstone": {
        "engine": ["Value.sigmoid", "Value.log"],
        "nn": ["softmax", "cross_entropy"],
        "optim": ["SGD", "Adam"],
    },
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


# A file is held as {"imports": set of lines, "defs": {name: definition}}; a definition is
# {"text": source} or, for a class, {"head": `class ...:` and docstring, "members": {name: source}}.


def _class_def(cls):
    """A class, its methods each as written; returns it and the functions it holds."""
    bases = [b.__name__ for b in cls.__bases__ if b is not object]
    head = f"class {cls.__name__}{'(' + ', '.join(bases) + ')' if bases else ''}:\n"
    if cls.__doc__:  # cleaned, so that a class loaded from a saved file gives the same text again
        head += _indent(f'"""{inspect.cleandoc(cls.__doc__)}"""\n')
    members: dict = {}
    written: dict = {}  # function -> the name it was first written under
    for name, member in vars(cls).items():
        if not inspect.isfunction(member):
            continue
        if member in written:
            members[name] = f"{name} = {written[member]}\n"
            continue
        members[member.__name__] = _function_source(member, f"{cls.__name__}.{name}")
        written[member] = member.__name__
        if member.__name__ != name:  # written as `def sgd_step(self)`, attached as SGD.step
            members[name] = f"{name} = {member.__name__}\n"
    return {"head": head, "members": members}, list(written)


def _notebook_file(module, members, home, saved):
    """micrograd/<module>.py as this notebook has it: imports, your helper functions, `members`.
    `home` maps each saved name to its module; `saved` holds the ids of every saved function."""
    defs, functions = {}, []
    for member in members:
        if inspect.isclass(member):
            defs[member.__name__], methods = _class_def(member)
            functions += methods
        else:
            defs[member.__name__] = {"text": _function_source(member, member.__name__)}
            functions.append(member)
    imports, helpers, seen = set(), {}, set(saved)
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
                helpers[name] = {"text": _function_source(value, name)}
                functions.append(value)
    return {"imports": imports, "defs": dict(reversed(helpers.items())) | defs}


def _saved_file(text):
    """A saved micrograd/<module>.py, read back into the form above."""
    lines = text.splitlines(keepends=True)

    def source(node):
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        return textwrap.dedent("".join(lines[first - 1 : node.end_lineno])).rstrip() + "\n"

    def name(node):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return node.name
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            return node.targets[0].id
        return source(node)

    imports, defs = set(), {}
    for i, node in enumerate(ast.parse(text).body):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imports.add(source(node).strip())
        elif i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the file's docstring, written anew
        elif isinstance(node, ast.ClassDef):
            body = node.body
            has_doc = isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            end = body[0].end_lineno if has_doc else node.lineno
            head = "".join(lines[start - 1 : end]).rstrip() + "\n"
            members = {name(m): source(m) for m in body[1 if has_doc else 0 :]}
            defs[node.name] = {"head": head, "members": members}
        else:
            defs[name(node)] = {"text": source(node)}
    return {"imports": imports, "defs": defs}


def _render_def(d):
    if "head" in d:
        return d["head"] + "".join("\n" + _indent(m) for m in d["members"].values())
    return d["text"]


def _render(module, file):
    parts = [_render_def(d) for d in file["defs"].values()]
    header = f'"""{DOCSTRINGS.get(module, module)} Written in the micrograd course."""'
    plain = "\n".join(sorted(i for i in file["imports"] if i.startswith("import")))
    local = "\n".join(sorted(i for i in file["imports"] if not i.startswith("import")))  # after the standard library
    head = "\n\n".join(s for s in (header, plain, local) if s)
    return "\n\n\n".join([head, *(s.rstrip("\n") for s in parts)]) + "\n"


def _owner(module, cls, name):
    """The notebook that writes `name` (a method of `cls`, or a top-level name when cls is None)."""
    key = f"{cls}.{name}" if cls else name
    for notebook, files in OWNERS.items():
        if key in files.get(module, []):
            return notebook
    return _owner(module, None, cls) if cls else None


def _merge(module, saved, mine, me, replaced, kept):
    """`saved` with this notebook's own definitions from `mine` put in, and every definition
    it lacks added. Records "file: name" of each different saved definition in `replaced`
    (this notebook's) or in `kept` (another notebook's: the saved one stays)."""
    where = f"{PACKAGE}/{module}.py"

    def mine_wins(cls, name, old, new):
        if old is None or old == new:
            return True
        who = _owner(module, cls, name)
        label = f"{cls}.{name}" if cls else name
        if who in (me, None):
            replaced.append(f"{where}: {label}")
            return True
        kept.append(f"{label} ({who} writes it)")
        return False

    defs = {name: dict(d, members=dict(d["members"])) if "head" in d else d for name, d in saved["defs"].items()}
    for name, new in mine["defs"].items():
        old = defs.get(name)
        if old is not None and "head" in old and "head" in new:
            if mine_wins(None, name, old["head"], new["head"]):
                old["head"] = new["head"]
            for member, text in new["members"].items():
                if mine_wins(name, member, old["members"].get(member), text):
                    old["members"][member] = text
        elif mine_wins(None, name, old and _render_def(old), _render_def(new)):
            defs[name] = new  # new here, a changed function, or a class where a function was
    return {"imports": saved["imports"] | mine["imports"], "defs": defs}


def _check_imports(folder, modules):
    """Import the new package in a fresh Python, so that a problem shows here, not in the next notebook."""
    names = ", ".join(f"{PACKAGE}.{m}" for m in modules)
    run = subprocess.run([sys.executable, "-c", f"import {names}"], cwd=folder, capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"the saved package does not import:\n{run.stderr.strip().splitlines()[-1]}")


def _back_up(folder):
    """Copy folder/micrograd to folder/micrograd.bak/<time>/, keeping the newest few; return the copy."""
    backups = os.path.join(folder, BACKUPS)
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    copy, n = os.path.join(backups, stamp), 1
    while os.path.exists(copy):
        n += 1
        copy = os.path.join(backups, f"{stamp}_{n}")
    shutil.copytree(os.path.join(folder, PACKAGE), copy)
    for old in sorted(os.listdir(backups))[:-BACKUPS_KEPT]:
        shutil.rmtree(os.path.join(backups, old), ignore_errors=True)
    return os.path.normpath(copy)


def _read_saved(path, replaced):
    if os.path.isfile(path):
        with open(path) as f:
            try:
                return _saved_file(f.read())
            except SyntaxError:  # edited by hand: backed up below, then written anew
                replaced.append(f"{PACKAGE}/{os.path.basename(path)}, which did not parse")
    return {"imports": set(), "defs": {}}


def _save_into(folder, files, me, check):
    """Merge this notebook's `files` ({module: file}) into folder/micrograd/; return what it says."""
    package = os.path.join(folder, PACKAGE)
    texts: dict = {}
    replaced: list = []
    kept: list = []
    for module, mine in files.items():
        saved = _read_saved(os.path.join(package, f"{module}.py"), replaced)
        texts[module] = _render(module, _merge(module, saved, mine, me, replaced, kept))
    texts["__init__"] = f'"""micrograd, written in the micrograd course."""\n\nfrom {PACKAGE}.engine import Value\n'
    for module, text in texts.items():
        compile(text, f"{PACKAGE}/{module}.py", "exec")  # a syntax error stops here
    with tempfile.TemporaryDirectory() as tmp:
        if os.path.isdir(package):
            shutil.copytree(package, os.path.join(tmp, PACKAGE), ignore=shutil.ignore_patterns("__pycache__"))
        os.makedirs(os.path.join(tmp, PACKAGE), exist_ok=True)
        for module, text in texts.items():
            with open(os.path.join(tmp, PACKAGE, f"{module}.py"), "w") as f:
                f.write(text)
        if check:
            _check_imports(tmp, files)
        notes = []
        if replaced and os.path.isdir(package):
            copy = _back_up(folder)
            notes.append(f"replaced your saved {', '.join(replaced)}; the files as they were are in {copy}")
        if kept:
            notes.append(
                f"kept the saved {', '.join(kept)}: this notebook's version differs; run that notebook to change it"
            )
        os.makedirs(package, exist_ok=True)
        for module, text in texts.items():
            with open(os.path.join(package, f"{module}.py"), "w") as f:
                f.write(text)
    return notes


def _to_drive(files, me):
    """Save to Google Drive in Colab; return where, or None outside Colab or if Drive is refused."""
    try:
        from google.colab import drive
    except ImportError:
        return None
    try:
        drive.mount(DRIVE_ROOT)
        os.makedirs(DRIVE_FOLDER, exist_ok=True)
        for note in _save_into(DRIVE_FOLDER, files, me, check=False):
            print(f"On your Google Drive: {note}.")
        return os.path.join(DRIVE_FOLDER, PACKAGE)
    except Exception as error:  # refused, offline, or a full Drive: the zip below still keeps the work
        print(f"Google Drive is not available ({type(error).__name__}): download the zip instead.")
        return None


def _zip(path):
    with zipfile.ZipFile(path, "w") as z:
        for root, _, names in sorted(os.walk(PACKAGE)):
            for name in sorted(names):
                if name.endswith(".py"):
                    z.write(os.path.join(root, name))


def save_micrograd(notebook, **modules):
    """save_micrograd("exercise 4", engine=[Value], nn=[Module, Neuron]): merge the classes and
    functions listed into micrograd/<module>.py for each keyword, where `notebook` rewrites
    only the definitions OWNERS gives it, then check that the package imports."""
    if notebook not in OWNERS:
        raise ValueError(f"{notebook!r} is not one of the notebooks that save: {', '.join(OWNERS)}")
    home = {member.__name__: module for module, members in modules.items() for member in members}
    listed = [member for members in modules.values() for member in members]
    saved = {id(f) for m in listed for f in (vars(m).values() if inspect.isclass(m) else [m])}
    mine = {module: _notebook_file(module, members, home, saved) for module, members in modules.items()}
    grading = os.environ.get("MICROGRAD_GRADING") == "1"
    for note in _save_into(".", mine, notebook, check=not grading):
        print(f"Note: {note}.")
    written = ", ".join(f"{PACKAGE}/{m}.py" for m in modules)
    print(f"Saved {written} in {os.getcwd()}.")
    if grading:
        return
    drive_copy = _to_drive(mine, notebook)
    if drive_copy:
        print(f"Saved to your Google Drive too: {drive_copy}. The next notebook loads it from there.")
    elif "google.colab" in sys.modules:
        _zip(f"{PACKAGE}.zip")
        from google.colab import files

        files.download(f"{PACKAGE}.zip")
        print(f"Downloading {PACKAGE}.zip: keep it, and upload it when the next notebook asks for it.")


# ---- end of the course's save cell ----
