"""The Invoke tasks: thin wrappers that parse options, call the library and render through a reporter.

One module per group of tasks; this file assembles the namespace that `invoke` and `npuenv` both use.
Keep imports here light: `invoke --list` loads this module.
"""

from invoke import Collection

from .provision import bootstrap, bundle, lock
from .models import ns as models_ns
from .fleet import ns as fleet_ns
from .user import ns as user_ns
from .wheels import wheels
from .kill_npu import kill_npu
from .doctor import doctor
from .smoke import smoke

ns = Collection()
ns.add_task(bootstrap)
ns.add_task(lock)
ns.add_task(bundle)
ns.add_collection(models_ns)
ns.add_collection(user_ns)
ns.add_collection(fleet_ns)
ns.add_task(wheels)
ns.add_task(kill_npu)
ns.add_task(doctor)
ns.add_task(smoke)
ns.configure({"npuenv": {"mirrors": {}}})
