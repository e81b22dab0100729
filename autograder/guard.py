"""A cell the grader puts at the top of every submission before it runs.

In-kernel tests share the kernel with the student's code, which could redefine what the tests
rely on: `math.isclose`, `isinstance`, the `expect_close` helper of the setup cell, or IPython's
error display (so that a failing test shows no error). Before every cell the guard puts back
what it saw before any student code ran. A determined student who reads this can still
unregister it: the README says what a kernel-level test cannot prevent.
"""

GUARD_SOURCE = '''\
# Added by the grader: before each cell, restore what the tests rely on.
def _grader_guard():
    import builtins, math
    ip = get_ipython()
    kinds = (builtins, math)
    saved = [(m, dict(vars(m))) for m in kinds]
    shell_class = type(ip)
    shell_saved = {n: getattr(shell_class, n) for n in ("showtraceback", "_showtraceback", "showsyntaxerror", "run_cell", "run_code")}
    setup = {}
    started = []

    def restore():
        for module, names in saved:
            vars(module).update(names)
        for name, method in shell_saved.items():
            setattr(shell_class, name, method)
            ip.__dict__.pop(name, None)
        ip.custom_exceptions = ()

    def before(info):
        restore()
        ip.user_ns.update(setup)
        started.append(set(ip.user_ns))

    def after(result):
        restore()  # before the kernel itself relies on builtins again
        if len(started) == 1:  # the first cell is the locked setup cell: protect what it defines
            setup.update({k: v for k, v in ip.user_ns.items() if k not in started[0] and not k.startswith("_i")})

    ip.events.register("pre_run_cell", before)
    ip.events.register("post_run_cell", after)


_grader_guard()
del _grader_guard
'''


def guard_cell():
    return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
            "source": GUARD_SOURCE}
