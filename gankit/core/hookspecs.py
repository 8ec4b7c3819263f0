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

    ``registry(kind)`` returns the :class:`gankit.core.registry.Registry` of
    one kind of component (``generators``, ``discriminators``, ``losses``,
    ``regularizers``, ``augmentations``, ``datasets``, ``metrics``,
    ``feature_extractors``, ``schedules``)::

        @gankit.hookimpl
        def gankit_register(registry):
            registry("generators").register("mygen", MyGenerator)

    or, with the components declared by ``@gankit.component(kind, name)``
    where they are defined::

        @gankit.hookimpl
        def gankit_register(registry):
            gankit.register_declared(registry, models)   # every @component of module `models`
    """
