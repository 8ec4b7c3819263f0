"""State a component keeps across a resume, declared by name.

    class MyRegularizer(Regularizer):           # Regularizer and GANLoss are Resumable
        resumable = ("calls",)                   # saved in every checkpoint, restored on resume

        def __init__(self):
            self.calls = 0

The run state (:class:`gankit.training.state.RunState`) saves each
component's ``state_dict()`` in the checkpoint and hands it back through
``load_state_dict()``; this mixin writes both from the names in
``resumable``. Values are tensors or plain Python values (the checkpoint is
read with ``torch.load(weights_only=True)``). A component with more to say
writes its own two methods instead (ADA's controller, path length's mean).
"""

from __future__ import annotations

from typing import Any, ClassVar


class Resumable:
    """``state_dict`` / ``load_state_dict`` over the attributes named in :attr:`resumable`."""

    resumable: ClassVar[tuple[str, ...]] = ()

    def state_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.resumable}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in self.resumable:
            if name in state:  # absent from a checkpoint written before the attribute was declared: keep its start
                setattr(self, name, state[name])
