"""The Registry class and the registries every gankit process has."""

import pytest

import gankit
from gankit.core.errors import RegistryError
from gankit.core.registry import KINDS, Registry


def test_register_get_build_list():
    reg = Registry("generators")

    @reg.register("alpha")
    def make(width: int = 3):
        return ("alpha", width)

    reg.register("beta", lambda: "beta")
    assert reg.get("alpha") is make
    assert reg.build("alpha", width=5) == ("alpha", 5)
    assert reg.list() == ["alpha", "beta"]
    assert reg.list("a*") == ["alpha"]
    assert "beta" in reg and len(reg) == 2


def test_duplicate_names_both_places():
    reg = Registry("losses")
    reg.register("same", lambda: 1, plugin="first-plugin")
    with pytest.raises(RegistryError) as err:
        reg.register("same", lambda: 2, plugin="second-plugin")
    message = str(err.value)
    assert "loss 'same' is registered twice" in message
    assert "first-plugin" in message and "second-plugin" in message
    assert "test_registry.py" in message  # where each one is defined


def test_unknown_name_suggests_and_lists():
    reg = Registry("discriminators")
    for name in ("dcgan", "resnet", "stylegan"):
        reg.register(name, dict, plugin="p")
    with pytest.raises(RegistryError) as err:
        reg.get("dcgam")
    message = str(err.value)
    assert "'dcgam' is not a registered discriminator; did you mean 'dcgan'?" in message
    assert "registered: dcgan, resnet, stylegan" in message


def test_every_kind_is_available_and_unknown_kind_is_explained():
    for kind in KINDS:
        assert isinstance(gankit.registry(kind), Registry)
    with pytest.raises(RegistryError, match="did you mean 'generators'"):
        gankit.registry("generator")


def test_builtins_and_reference_plugin_are_registered():
    assert "bce" in gankit.registry("losses")
    assert "digits" in gankit.registry("datasets")
    assert "dcgan" in gankit.registry("generators")
    assert "dcgan" in gankit.registry("discriminators")
