"""The hooks a gankit plugin can implement.

A plugin is a module (installed through the ``gankit`` entry-point group, or
named in a recipe's ``plugins:`` list) with functions decorated by
``gankit.hookimpl``. The hooks below are docstring-only specifications.
"""

import pluggy

hookspec = pluggy.HookspecMarker("gankit")
hookimpl = pluggy.HookimplMarker("gankit")


@hookspec
def gankit_register(registry):
    """Register this plugin's components.

    ``registry(kind)`` returns the :class:`gankit.registry.Registry` for one of
    ``generators``, ``discriminators``, ``losses``, ``datasets``, ``metrics``::

        @gankit.hookimpl
        def gankit_register(registry):
            registry("generators").register("mygen", MyGenerator)
    """
