"""Check a component section's arguments against the component's signature.

``generator: {name: dcgan, ngf: 32}`` is valid when ``dcgan`` is registered and
its constructor accepts ``ngf`` with a value of its annotated type. Values are
coerced the way pydantic does (``"2e-4"`` becomes 0.0002) and returned.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from pydantic import ConfigDict, TypeAdapter, ValidationError

from gankit.core.errors import suggestion
from gankit.core.registry import accepts, signature_of  # noqa: F401 (accepts: re-exported)


def _adapter(annotation: Any) -> TypeAdapter | None:
    if annotation is inspect.Parameter.empty or annotation is Any:
        return None
    try:
        return TypeAdapter(annotation, config=ConfigDict(arbitrary_types_allowed=True))
    except Exception:  # an annotation pydantic cannot express: skip the type check
        return None


def check_arguments(
    path: str,
    what: str,
    obj: Callable[..., Any],
    args: dict[str, Any],
    *,
    injected: tuple[str, ...] = (),
    other_keys: tuple[str, ...] = (),
    origin: Callable[[str], str] = lambda p: "",
    defaults: bool = False,
) -> tuple[list[str], dict[str, Any]]:
    """Problems with ``args`` for ``obj``, and the coerced arguments.

    ``injected`` are arguments gankit passes itself (not settable here);
    ``other_keys`` are the section's own keys, offered as did-you-mean too.
    With ``defaults``, the coerced arguments also hold every argument left at
    its default (when the default is a plain value a recipe could hold), so a
    run's recorded recipe keeps its meaning when a plugin's default changes.
    """
    sig = signature_of(obj)
    if sig is None:
        return [], dict(args)
    params = {
        n: p
        for n, p in sig.parameters.items()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    settable = [n for n in params if n not in injected]
    problems: list[str] = []
    coerced: dict[str, Any] = {}
    for key, value in args.items():
        where = f"{path}.{key}"
        if key in injected:
            problems.append(f"{where}: is set by gankit for {what}, not in this section{origin(where)}")
            continue
        param = params.get(key)
        if param is None:
            if var_kw:
                coerced[key] = value
                continue
            hint = suggestion(key, settable + list(other_keys), prefix=f"{path}.")
            accepted = ", ".join(settable) or "no arguments"
            problems.append(
                f"{where}: unknown key{origin(where)}{hint}\n    {what} accepts: {accepted}"
            )
            continue
        adapter = _adapter(param.annotation)
        if adapter is None:
            coerced[key] = value
            continue
        try:
            coerced[key] = adapter.validate_python(value)
        except ValidationError as exc:
            msg = exc.errors()[0]["msg"]
            problems.append(f"{where}: {msg} (got {value!r}){origin(where)}")
    for name, param in params.items():
        if param.default is inspect.Parameter.empty and name not in args and name not in injected:
            problems.append(f"{path}.{name}: missing; {what} requires it")
        elif defaults and name not in args and name not in injected and _plain(param.default):
            coerced[name] = _as_recipe_value(param.default)
    return problems, coerced


def _plain(value: Any) -> bool:
    """Whether a default is a value a YAML recipe can hold (None, bool, number, string, lists of them)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def _as_recipe_value(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_as_recipe_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_recipe_value(v) for k, v in value.items()}
    return value
