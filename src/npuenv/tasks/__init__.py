"""The Invoke tasks: thin wrappers that parse options, call the library and render through a reporter.

One module per group of tasks; this file assembles the namespace that `invoke` and `npuenv` both use.
Keep imports here light: `invoke --list` loads this module.
"""

from invoke import Collection

from .provision import bootstrap

ns = Collection()
ns.add_task(bootstrap)
ns.configure({"npuenv": {"mirrors": {}}})
